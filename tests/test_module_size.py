"""The module-size guard run by `make lint` (scripts/check_module_size.py)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_module_size.py"


def _guard() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("check_module_size", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_module_size", module)
    spec.loader.exec_module(module)
    return module


def test_a_module_over_the_limit_is_named_but_migrations_and_tests_are_not(tmp_path: Path) -> None:
    guard = _guard()
    app = tmp_path / "app"
    for folder in ("migrations", "tests"):
        (app / folder).mkdir(parents=True)
        (app / folder / "big.py").write_text("x = 1\n" * 900)
    (app / "services.py").write_text("x = 1\n" * 801)
    (app / "views.py").write_text("x = 1\n" * 800)
    assert guard.oversized(tmp_path, 800) == [(app / "services.py", 801)]


def test_no_module_of_truenorth_is_over_the_limit() -> None:
    assert _guard().oversized() == []
