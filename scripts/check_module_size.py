"""Fail when a module under truenorth/ (migrations and tests aside) grows past MAX_LINES.

A module that big holds several workflows: split it into a package by workflow that re-exports what
callers use (see docs/modules.md, "Inside an app"). Run by `make lint`.
"""

from __future__ import annotations

import sys
from pathlib import Path

MAX_LINES = 800
ROOT = Path(__file__).resolve().parent.parent / "truenorth"


def oversized(root: Path = ROOT, limit: int = MAX_LINES) -> list[tuple[Path, int]]:
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if "migrations" in parts or "tests" in parts:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append((path, lines))
    return found


def main() -> int:
    big = oversized()
    for path, lines in big:
        print(f"{path.relative_to(ROOT.parent)}: {lines} lines (limit {MAX_LINES}): split it by workflow")
    return 1 if big else 0


if __name__ == "__main__":
    sys.exit(main())
