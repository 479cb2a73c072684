"""Build a synthetic git repository with N commits, quickly, through `git fast-import`.

The history looks like a team's: a `main` branch where about a third of the work arrives through
feature branches merged with a merge commit (two parents), the rest as direct (or squashed) commits;
authors and committers from a team of forty (about 150 commits a working day), commit times on weekdays in working hours moving forward
from `--start`, each commit changing one of a few hundred files; a tag (`v1.N.0`) every `--tag-every`
commits on main. Same arguments, same repository (same SHAs).

    .venv/bin/python scripts/make_git_history.py /tmp/big-repo --commits 100000
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

AUTHORS = tuple((f"Developer {n}", f"dev{n}@example.com") for n in range(1, 41))


def _times(rng: random.Random, start: datetime) -> Iterator[int]:
    """Unix times on weekdays between 9:00 and 18:00 UTC, moving forward."""
    at = start
    while True:
        at += timedelta(seconds=rng.randint(20, 400))
        if at.hour >= 18 or at.weekday() >= 5:
            at = (at + timedelta(days=1)).replace(hour=9, minute=rng.randint(0, 30))
            while at.weekday() >= 5:
                at += timedelta(days=1)
        yield int(at.timestamp())


def stream(
    commits: int, seed: int = 1, start: datetime | None = None, tag_every: int = 400
) -> Iterator[bytes]:
    """The fast-import stream of a repository with `commits` commits (merge commits included)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    clock = _times(rng, start or datetime(2022, 1, 3, 9, tzinfo=UTC))
    mark = 0
    main_tip = 0
    made = 0
    tags = 0
    files = [f"src/module_{n // 20}/file_{n}.py" for n in range(400)]

    def commit(ref: str, parent: int, message: str, merge: int = 0) -> bytes:
        nonlocal mark, made
        mark += 1
        made += 1
        name, email = rng.choice(AUTHORS)
        when = next(clock)
        path = rng.choice(files)
        body = f"# change {mark}\nVALUE = {rng.randint(0, 10**9)}\n".encode()
        msg = message.encode()
        parts = [
            f"commit {ref}\nmark :{mark}\n".encode(),
            f"author {name} <{email}> {when} +0000\ncommitter {name} <{email}> {when} +0000\n".encode(),
            b"data %d\n%s\n" % (len(msg), msg),
        ]
        if parent:
            parts.append(f"from :{parent}\n".encode())
        if merge:
            parts.append(f"merge :{merge}\n".encode())
        parts.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(body), body))
        return b"".join(parts)

    while made < commits:
        if main_tip and rng.random() < 0.3 and commits - made >= 3:
            # A feature branch off main, 1-4 commits, merged back with a merge commit.
            branch_tip = main_tip
            number = mark + 1
            for i in range(min(rng.randint(1, 4), commits - made - 1)):
                yield commit("refs/heads/topic", branch_tip, f"Feature {number}: step {i + 1}")
                branch_tip = mark
            yield commit("refs/heads/main", main_tip, f"Merge branch 'feature-{number}'", merge=branch_tip)
        else:
            yield commit("refs/heads/main", main_tip, f"Change {mark + 1}")
        main_tip = mark
        if made // tag_every > tags:
            tags += 1
            yield f"reset refs/tags/v1.{tags}.0\nfrom :{main_tip}\n\n".encode()
    yield b"reset refs/heads/topic\nfrom 0000000000000000000000000000000000000000\n\n"


COMMITS_PER_DAY = 150 * 5 / 7  # on average over calendar days


def build(
    directory: Path, commits: int, seed: int = 1, tag_every: int = 400, start: datetime | None = None
) -> Path:
    """Create the repository in `directory` (which must not hold one yet) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(directory)], check=True)  # noqa: S603, S607
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"],  # noqa: S607
        cwd=directory,
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    buffer: list[bytes] = []
    for chunk in stream(commits, seed, start, tag_every=tag_every):
        buffer.append(chunk)
        if len(buffer) >= 2_000:
            proc.stdin.write(b"".join(buffer))
            buffer.clear()
    buffer.append(b"done\n")
    proc.stdin.write(b"".join(buffer))
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tag-every", type=int, default=400)
    parser.add_argument(
        "--start", type=datetime.fromisoformat, default=None, help="first commit, e.g. 2022-01-03"
    )
    args = parser.parse_args(argv)
    if (args.directory / ".git").exists():
        print(f"{args.directory} already holds a repository", file=sys.stderr)
        return 2
    start = args.start.replace(tzinfo=args.start.tzinfo or UTC) if args.start else None
    build(args.directory, args.commits, args.seed, args.tag_every, start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
