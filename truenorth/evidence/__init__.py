"""Evidence queries: metric definitions compiled to SQL that runs where the raw events live, so only
summary statistics per variation come back (no Django; usable as a library).

- `metrics`: typed, validated metric definitions (`Metric`, `Selection`, `Denominator`).
- `compile`: one SQL query per experiment via SQLGlot, for any dialect (`compile_experiment`, `Tables`).
- `run`: engines (`DuckDBEngine`, `PostgresEngine`, or any object with ``dialect`` and ``fetch``),
  `run_experiment` -> `Evidence` of `truenorth.stats.summary` objects, `compare_to_control`, `srm_p_value`.
- `synthetic`: generated experiments with planted effects; `reference`: the pandas baseline.
"""
