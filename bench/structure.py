"""Structure figures of a checkout (issue #14's before → after): long functions, handler size, store
accesses in handlers, and import cycles between the packages of `bot/`.

    .venv/bin/python -m bench.structure [PATH]     # PATH defaults to this checkout
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

LONG = 50
_STORE = re.compile(r"\bstore\.\w+\(|\.store\b")


def functions(root: Path) -> list[tuple[int, str]]:
    """(lines, where) of every function in bot/, handlers/ and localslack/."""
    found = []
    for package in ("bot", "handlers", "localslack"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                    found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(found, reverse=True)


def store_accesses(root: Path) -> int:
    """Lines in handlers/ that reach a store (`….store…`, `store.x(`), imports aside."""
    count = 0
    for path in (root / "handlers").glob("*.py"):
        for line in path.read_text().splitlines():
            if not line.lstrip().startswith(("from ", "import ")) and _STORE.search(line):
                count += 1
    return count


def package_edges(root: Path) -> dict[str, set[str]]:
    """bot.<package> → the bot packages it imports (module-level `bot/x.py` files count as packages)."""

    def unit(module: str) -> str | None:
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "bot" and len(parts) > 1 else None

    known = {unit(".".join(p.with_suffix("").relative_to(root).parts)) for p in (root / "bot").iterdir()}
    edges: dict[str, set[str]] = {}
    for path in (root / "bot").rglob("*.py"):
        source = unit(".".join(path.with_suffix("").relative_to(root).parts))
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                target = unit(name)
                if source and target and target != source and target in known:
                    edges.setdefault(source, set()).add(target)
    return edges


def cyclic_groups(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one package (Tarjan): each is at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    found = functions(root)
    handlers = sorted((root / "handlers").glob("*.py"))
    sizes = {p.name: len(p.read_text().splitlines()) for p in handlers}
    over = [(n, where) for n, where in found if n > LONG]
    groups = cyclic_groups(package_edges(root))
    print(f"functions over {LONG} lines        {len(over)}")
    for n, where in over[:10]:
        print(f"  {n:4d}  {where}")
    print(f"longest function               {found[0][1]} ({found[0][0]} lines)")
    print(
        f"handler lines                  {sum(sizes.values())} in {len(sizes)} files, largest "
        f"{max(sizes, key=lambda k: sizes[k])} ({max(sizes.values())})"
    )
    print(f"store accesses in handlers     {store_accesses(root)}")
    print(f"packages of bot/ in a cycle    {sum(len(g) for g in groups)} {groups}")


if __name__ == "__main__":
    main()
