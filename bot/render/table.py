"""Monospaced tables for Slack that never cut a row in half and say how many rows were left out."""

from __future__ import annotations

from typing import Any

CELL_MAX = 60


def _cell(value: Any) -> str:
    text = "∅" if value is None else str(value)
    text = text.replace("\n", " ").replace("`", "'")
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


def render_table(columns: list[str], rows: list[list[Any]], *, budget: int) -> tuple[str, int]:
    """A ``` code block of at most `budget` characters and the number of rows that did not fit."""
    cells = [[_cell(c) for c in columns]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(columns))]

    def line(row: list[str]) -> str:
        return "  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip()

    header = line(cells[0])
    out = ["```", header, "-" * min(len(header), 120)]
    used = sum(len(p) + 1 for p in out) + 4
    shown = 0
    for row in cells[1:]:
        text = line(row)
        # Room is kept for the closing fence and a "N more rows" note.
        if used + len(text) + 1 + 40 > budget:
            break
        out.append(text)
        used += len(text) + 1
        shown += 1
    out.append("```")
    return "\n".join(out), len(rows) - shown


def plain_table(columns: list[str], rows: list[list[Any]]) -> str:
    """The whole table as text, for the file attached in the thread."""
    cells = [[str(c) for c in columns]] + [["∅" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in cells)
