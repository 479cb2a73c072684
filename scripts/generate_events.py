"""Generate a synthetic A/B test with known planted effects as Parquet (and optionally load PostgreSQL).

    .venv/bin/python scripts/generate_events.py OUT_DIR [--events 10000000] [--seed 7]
        [--treatment-share 0.5] [--postgres postgresql://postgres@127.0.0.1:5432/test --schema evidence_demo]

Writes OUT_DIR/assignments.parquet (unit_id, experiment, variation, first_exposure_at) and
OUT_DIR/events.parquet (unit_id, at, name, value) in chunks of 250,000 units (about 5,000,000 events),
so 100,000,000 events need well under 2 GB of memory. The planted effects (see
`truenorth.evidence.synthetic`) are printed at the end. Nothing here is committed: it is generated.
Then: `truenorth evidence run --source OUT_DIR --experiment checkout`, or for PostgreSQL
`--source 'postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Devidence_demo'`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from truenorth.evidence.synthetic import (
    Planted,
    copy_to_postgres,
    create_postgres_tables,
    generate,
    write_parquet,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--events", type=int, default=10_000_000, help="about this many events (default 10M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--treatment-share", type=float, default=0.5, help="actual share in treatment (plant an SRM)"
    )
    parser.add_argument("--postgres", help="also COPY the data into this PostgreSQL database")
    parser.add_argument(
        "--schema", default="evidence_demo", help="PostgreSQL schema to create (default evidence_demo)"
    )
    args = parser.parse_args(argv)
    planted = Planted(treatment_share=args.treatment_share)
    started = time.perf_counter()
    units, events = write_parquet(args.out, args.events, seed=args.seed, planted=planted)
    print(
        f"wrote {units:,} units and {events:,} events to {args.out} in {time.perf_counter() - started:.1f} s"
    )
    if args.postgres:
        import psycopg

        if not args.schema.isidentifier():
            print("error: --schema must be a plain identifier", file=sys.stderr)
            return 2
        started = time.perf_counter()
        with psycopg.connect(args.postgres) as conn, conn.cursor() as cur:
            create_postgres_tables(cur, args.schema)
            for assignments, chunk in generate(args.events, seed=args.seed, planted=planted):
                copy_to_postgres(cur, args.schema, assignments, chunk)
        print(f"loaded PostgreSQL schema {args.schema} in {time.perf_counter() - started:.1f} s")
    print("planted relative effects (treatment vs control):")
    for name, lift in planted.true_lifts().items():
        print(f"  {name:<24} {100 * lift:+.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
