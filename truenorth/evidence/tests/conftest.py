from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from truenorth.evidence.synthetic import Planted, write_parquet


@pytest.fixture(scope="session")
def small_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~2,000 units, ~40,000 events: for comparing engines with pandas."""
    directory = tmp_path_factory.mktemp("evidence_small")
    write_parquet(directory, 40_000, seed=11)
    return directory


@pytest.fixture(scope="session")
def large_parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Planted]:
    """~200,000 units with few page views each (fast to generate), for recovering planted effects."""
    planted = Planted(views_per_day=0.08)
    directory = tmp_path_factory.mktemp("evidence_large")
    units = 200_000
    write_parquet(directory, int(units * planted.events_per_unit()), seed=3, planted=planted)
    return directory, planted


def rows_close(a: dict[str, float], b: dict[str, float]) -> list[str]:
    return [k for k in a if not np.isclose(a[k], b[k], rtol=1e-9, atol=1e-6)]
