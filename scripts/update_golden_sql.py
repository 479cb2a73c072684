"""Write the golden SQL files (truenorth/evidence/tests/golden/<dialect>/<case>.sql) from
`compile_experiment`, then print which changed. Review the diff (`git diff truenorth/evidence/tests/golden`)
before committing: for Trino, BigQuery and Snowflake these files are the only check of the SQL.

    .venv/bin/python scripts/update_golden_sql.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from truenorth.evidence.tests.test_golden_sql import GOLDEN, PAIRS, golden_path, render


def main() -> int:
    wanted: set[Path] = set()
    for dialect, case in PAIRS:
        path = golden_path(dialect, case)
        wanted.add(path)
        text = render(dialect, case)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"{'updated' if old is not None else 'created'} {path.relative_to(GOLDEN.parent)}")
    for stray in sorted(set(GOLDEN.rglob("*.sql")) - wanted):
        stray.unlink()
        print(f"removed {stray.relative_to(GOLDEN.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
