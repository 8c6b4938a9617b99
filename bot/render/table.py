"""Monospaced tables for Slack that never cut a row in half and say what did not fit.

A card shows a cell up to `CELL_MAX` characters (a one-column table — output lines such as
`docker stats` — up to `LINE_MAX`, so its columns survive); a longer cell ends in "…" and the table
reports it as clipped, so the caller attaches the uncut text (`plain_table`) in the thread.
"""

from __future__ import annotations

from typing import Any, NamedTuple

CELL_MAX = 60
LINE_MAX = 160


class Fitted(NamedTuple):
    """A table as it fits on a card: the code block, rows left out, and whether a cell was clipped."""

    text: str
    left: int
    clipped: bool


def _text(value: Any) -> str:
    return ("∅" if value is None else str(value)).replace("\n", " ").replace("`", "'")


def _cell(value: Any, limit: int) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_table(columns: list[str], rows: list[list[Any]], *, budget: int) -> Fitted:
    """A ``` code block of at most `budget` characters, the rows that did not fit, and whether
    any cell shown or left out was too long for the card."""
    limit = LINE_MAX if len(columns) == 1 else CELL_MAX
    raw = [list(columns)] + [list(row) for row in rows]
    clipped = any(len(_text(value)) > limit for row in raw for value in row)
    cells = [[_cell(v, limit) for v in row] for row in raw]
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
    return Fitted("\n".join(out), len(rows) - shown, clipped)


def render_table(columns: list[str], rows: list[list[Any]], *, budget: int) -> tuple[str, int]:
    """A ``` code block of at most `budget` characters and the number of rows that did not fit."""
    fitted = fit_table(columns, rows, budget=budget)
    return fitted.text, fitted.left


def plain_table(columns: list[str], rows: list[list[Any]]) -> str:
    """The whole table as text, for the file attached in the thread: nothing clipped."""
    cells = [[str(c) for c in columns]] + [["∅" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in cells)
