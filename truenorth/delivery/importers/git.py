"""The git importer: a repository on disk → commits (merge commits flagged) and tags as releases.

One `git log --all --source` process lists every commit reachable from any ref, one line each
(`sha, parents, author date, committer date, the ref it was reached from`), read as a stream and parsed
line by line, so a history of 100,000+ commits never sits in memory and costs little more than
`git log` itself. Then `git for-each-ref refs/tags` lists the tags: each becomes a release at its tag
date (annotated) or its commit's date (lightweight), pointing at the tagged commit. Last,
`git for-each-ref refs/heads refs/remotes` lists the branches (local and remote-tracking, symbolic refs
such as `origin/HEAD` skipped), each with its head commit and that commit's committer date, followed by
a `BranchesComplete` marker: a branch of the source missing from the listing was deleted.

The repository's own configuration is not trusted: git runs with `core.fsmonitor` off, no pager, no
signature checks, no prompts. Where the path may come from (any path from the CLI, only the
organisation's own directories from the web and API) is decided by the caller
(`truenorth.delivery.services.sources.allowed_repository`).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from truenorth.delivery.importers._common import UnreadableInput
from truenorth.delivery.importers.base import (
    BadRecord,
    BranchesComplete,
    BranchRecord,
    CommitRecord,
    Record,
    ReleaseRecord,
    register,
)

SEP = "\x1f"
LOG_FORMAT = SEP.join(("%H", "%P", "%aI", "%cI", "%S"))
TAG_FORMAT = SEP.join(
    ("%(refname:short)", "%(objectname)", "%(*objectname)", "%(creatordate:iso-strict)", "%(objecttype)")
)

BRANCH_FORMAT = SEP.join(("%(refname)", "%(objectname)", "%(committerdate:iso-strict)", "%(symref)"))


def _git(repository: Path, *args: str) -> list[str]:
    return [
        "git",
        "-c", "core.fsmonitor=false",
        "-c", "log.showSignature=false",
        "-c", f"safe.directory={repository}",
        "-C", str(repository),
        "--no-pager",
        *args,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


def _branch(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/remotes/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ""  # reached from a tag or HEAD only: no branch to name


def count_commits(repository: Path) -> int:
    """How many commits `read` will yield (for a progress bar); 0 when unknown."""
    try:
        out = subprocess.run(  # noqa: S603 - git by name, arguments as a list, no shell
            _git(repository, "rev-list", "--all", "--count"),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else 0


class GitImporter:
    name = "git"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        if not isinstance(data, Path):
            raise UnreadableInput("The git importer reads a repository on disk: give its path.")
        repository = data
        if not repository.is_dir():
            raise UnreadableInput(f"{repository} is not a directory.")
        check = subprocess.run(  # noqa: S603 - git by name, arguments as a list, no shell
            _git(repository, "rev-parse", "--git-dir"), capture_output=True, text=True, env=_env()
        )
        if check.returncode != 0:
            raise UnreadableInput(f"{repository} is not a git repository.")
        yield from self._commits(repository)
        yield from self._tags(repository)
        yield from self._branches(repository)

    def _commits(self, repository: Path) -> Iterator[Record | BadRecord]:
        errors = tempfile.TemporaryFile()
        process = subprocess.Popen(  # noqa: S603 - git by name, arguments as a list, no shell
            _git(repository, "log", "--all", "--source", f"--format={LOG_FORMAT}"),
            stdout=subprocess.PIPE,
            stderr=errors,
            env=_env(),
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1 << 16,
        )
        assert process.stdout is not None
        parse = dt.datetime.fromisoformat
        try:
            for number, line in enumerate(process.stdout, start=1):
                fields = line.rstrip("\n").split(SEP)
                if len(fields) != 5:
                    yield BadRecord(f"git log line {number}", "Unexpected git log output.")
                    continue
                sha, parents, authored, committed, ref = fields
                try:
                    yield CommitRecord(
                        sha=sha,
                        authored_at=parse(authored),
                        committed_at=parse(committed),
                        is_merge=" " in parents,
                        branch=_branch(ref),
                    )
                except ValueError as error:
                    yield BadRecord(f"commit {sha}", f"Unreadable date: {error}")
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()
            errors.seek(0)
            err = errors.read().decode("utf-8", "replace").strip()
            errors.close()
        if process.returncode not in (0, -9) and err:
            raise UnreadableInput(f"git log failed: {err.splitlines()[-1]}")

    def _tags(self, repository: Path) -> Iterator[Record | BadRecord]:
        out = subprocess.run(  # noqa: S603 - git by name, arguments as a list, no shell
            _git(repository, "for-each-ref", f"--format={TAG_FORMAT}", "refs/tags"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=_env(),
        )
        for line in out.stdout.splitlines():
            fields = line.split(SEP)
            if len(fields) != 5:
                continue
            name, target, peeled, created, object_type = fields
            try:
                at = dt.datetime.fromisoformat(created)
            except ValueError:
                yield BadRecord(f"tag {name}", "The tag has no readable date.")
                continue
            sha = peeled if object_type == "tag" else target
            yield ReleaseRecord(name=name, at=at, sha=sha)

    def _branches(self, repository: Path) -> Iterator[Record | BadRecord]:
        out = subprocess.run(  # noqa: S603 - git by name, arguments as a list, no shell
            _git(repository, "for-each-ref", f"--format={BRANCH_FORMAT}", "refs/heads", "refs/remotes"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=_env(),
        )
        if out.returncode != 0:  # no listing: no branch is taken for deleted
            yield BadRecord("branches", "git for-each-ref failed: the branches were not read.")
            return
        complete = True
        for line in out.stdout.splitlines():
            fields = line.split(SEP)
            if len(fields) != 4 or fields[3]:  # a symbolic ref (origin/HEAD) is no branch of its own
                continue
            ref, sha, committed, _ = fields
            name = _branch(ref)
            if not name:
                continue
            try:
                at = dt.datetime.fromisoformat(committed)
            except ValueError:
                yield BadRecord(f"branch {name}", "The branch's head commit has no readable date.")
                complete = False  # a branch left out is not a deleted one
                continue
            yield BranchRecord(name, sha, at, remote=ref.startswith("refs/remotes/"))
        if complete:
            yield BranchesComplete()


register(GitImporter())
