"""Every number the engine gives agrees with GrowthBook's gbstats 0.8.0 to a relative 1e-6.

gbstats runs in its own venv (``make gbstats-venv``: it pins numpy<2) through
``scripts/gbstats_reference.py``. The test is skipped when that venv is missing, except in CI.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from truenorth.stats.tests.gbstats_cases import ENGINES, engine_numbers, make_cases, stacked

ROOT = Path(__file__).resolve().parents[3]
GB_PYTHON = ROOT / ".venv-gbstats" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "gbstats_reference.py"
REL, ABS = 1e-6, 1e-12

if not GB_PYTHON.exists() and os.environ.get("CI") != "true":
    pytest.skip(
        "gbstats venv missing: run `make gbstats-venv` (required, and never skipped, when CI=true)",
        allow_module_level=True,
    )

CASES = make_cases()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if not GB_PYTHON.exists():
        pytest.fail("CI=true but the gbstats venv is missing: `make gbstats-venv` must run first")
    tmp = tmp_path_factory.mktemp("gbstats")
    (tmp / "in.json").write_text(json.dumps(CASES))
    subprocess.run(
        [str(GB_PYTHON), str(SCRIPT), str(tmp / "in.json"), str(tmp / "out.json")],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return json.loads((tmp / "out.json").read_text())


MAX_ERROR: dict[str, float] = {}


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=ABS) or (math.isinf(ours) and ours == theirs)


@pytest.mark.parametrize(
    "index", range(len(CASES)), ids=[f"{c['stat']}-{c['test']}-{i}" for i, c in enumerate(CASES)]
)
def test_case_agrees_with_gbstats(reference, index):
    case = CASES[index]
    ours = engine_numbers(ENGINES[case["test"]](case))
    theirs = reference[index]
    for kind in ("absolute", "relative"):
        gb = theirs[kind]
        assert gb.get("error_message") is None, gb
        expected = {
            "expected": gb["expected"],
            "ci_low": gb["ci"][0],
            "ci_high": gb["ci"][1],
            "stddev": gb["uplift"]["stddev"],
            "p_value": gb["p_value"],
        }
        for name, value in expected.items():
            got = ours[kind][name]
            err = abs(got - value) / max(abs(value), 1e-9)  # p-values below 1e-9: gbstats loses digits
            MAX_ERROR[f"{case['test']}/{kind}/{name}"] = max(
                MAX_ERROR.get(f"{case['test']}/{kind}/{name}", 0), err
            )
            assert close(got, value), (
                f"{case['stat']} {case['test']} {kind} {name}: ours {got!r} gbstats {value!r}"
            )


def test_coverage(reference):
    stats = {(c["stat"], c["test"]) for c in CASES}
    assert len(CASES) >= 50
    for stat in ("mean", "proportion", "ratio", "cuped"):
        for test in ("ttest", "sequential"):
            assert (stat, test) in stats
    print("max relative error per number:", json.dumps(MAX_ERROR, indent=1), file=sys.stderr)


@pytest.mark.parametrize("kind", sorted({(c["stat"], c["test"]) for c in CASES}), ids=str)
def test_vectorised_call_agrees_with_gbstats(reference, kind):
    """All cases of one kind in ONE vectorised call: the same numbers as gbstats, element by element."""
    indices = [i for i, c in enumerate(CASES) if (c["stat"], c["test"]) == kind]
    by_proportion: dict[bool, list[int]] = {}
    for i in indices:
        by_proportion.setdefault(bool(CASES[i]["a"].get("proportion")), []).append(i)
    for group in by_proportion.values():
        result = ENGINES[kind[1]](stacked([CASES[i] for i in group]))
        for j, i in enumerate(group):
            gb = reference[i]
            for ours, theirs in [
                (result.effect[j], gb["absolute"]["expected"]),
                (result.ci_low[j], gb["absolute"]["ci"][0]),
                (result.ci_high[j], gb["absolute"]["ci"][1]),
                (result.p_value[j], gb["absolute"]["p_value"]),
                (result.effect_relative[j], gb["relative"]["expected"]),
                (result.ci_low_relative[j], gb["relative"]["ci"][0]),
                (result.ci_high_relative[j], gb["relative"]["ci"][1]),
            ]:
                assert close(float(ours), theirs), (kind, i, float(ours), theirs)
        assert not np.any(result.not_enough_data)
