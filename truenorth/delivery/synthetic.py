"""Synthetic delivery history: realistic, deterministic (same seed, same history), plain dataclasses.

What one team does over `days` from `start` (all times UTC, timezone-aware):

* **Work items** (stories, bugs, tasks) arrive at `items_per_day` a calendar day (fewer at weekends),
  each created in "To Do" and moving To Do → In Progress → (Blocked → In Progress) → In Review
  (→ In Progress when the review asks for changes → In Review) → Done, with log-normal durations in
  working time. Some are reopened after Done (Done → In Progress → In Review → Done), some are never
  started, a few are closed straight from To Do (duplicates: done without being started), and those
  whose next step falls after the end are still in progress (or waiting).
* **Commits and pull requests**: every started story or bug gets a pull request with 1 to 8 commits
  authored during its work (weekdays, working hours); merged when the item is done, as a squash (a new
  commit on main, the PR's first commit still known), a merge commit or a rebase. A few chores are
  committed straight to main.
* **Deployments**: one pipeline run most working afternoons when something was merged since the last
  one, deploying the new main commits to "production" (sometimes two services from one run: several
  rows, one `run_id`); a few runs go to "staging" only. About `failure_rate` of production runs fail;
  a fix run follows hours later (a hotfix commit, or a rollback that deploys no commits at all).
* **Incidents**: opened after about half of the failed deployments, resolved when the fix is out; one
  more opened near the end and still open.
* **Releases**: a tag every `release_weeks` weeks on the last successfully deployed commit.

`to_event_rows(history)` writes it in the generic event format (docs/delivery.md, "The generic event
format"; pull requests have no place there). No Django here: the demo and the benchmark store it through
the ingest service.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

TODO, IN_PROGRESS, BLOCKED, IN_REVIEW, DONE = "To Do", "In Progress", "Blocked", "In Review", "Done"
STATE_MAPPING: dict[str, list[str]] = {
    "started": [IN_PROGRESS],
    "waiting": [IN_REVIEW, BLOCKED],
    "done": [DONE],
}
PRODUCTION, STAGING = "production", "staging"
WORK_START, WORK_END = 9, 18  # working hours, UTC


@dataclass(frozen=True)
class Transition:
    at: datetime
    from_state: str  # "" for the creation
    to_state: str


@dataclass(frozen=True)
class WorkItem:
    external_id: str
    title: str
    item_type: str
    labels: tuple[str, ...]
    created_at: datetime
    transitions: tuple[Transition, ...]

    @property
    def state(self) -> str:
        return self.transitions[-1].to_state if self.transitions else TODO


@dataclass(frozen=True)
class Commit:
    sha: str
    authored_at: datetime
    committed_at: datetime
    is_merge: bool
    branch: str
    message: str
    author: str


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    created_at: datetime
    first_commit_at: datetime
    merged_at: datetime | None
    merge_sha: str
    commit_shas: tuple[str, ...]
    merge_style: str  # "squash", "merge", "rebase" or "" while open


@dataclass(frozen=True)
class Deployment:
    external_id: str
    run_id: str
    service: str
    environment: str
    deployed_at: datetime
    succeeded: bool
    commit_shas: tuple[str, ...]


@dataclass(frozen=True)
class Incident:
    external_id: str
    service: str
    opened_at: datetime
    resolved_at: datetime | None
    deployment_id: str  # the failed deployment's external_id, "" when none caused it


@dataclass(frozen=True)
class Release:
    name: str
    at: datetime
    sha: str


@dataclass
class History:
    start: datetime
    end: datetime
    items: list[WorkItem] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    pull_requests: list[PullRequest] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)

    @property
    def transition_count(self) -> int:
        return sum(len(item.transitions) for item in self.items)

    def counts(self) -> dict[str, int]:
        return {
            "items": len(self.items),
            "transitions": self.transition_count,
            "commits": len(self.commits),
            "pull_requests": len(self.pull_requests),
            "deployments": len(self.deployments),
            "incidents": len(self.incidents),
            "releases": len(self.releases),
        }


def working_time(at: datetime) -> datetime:
    """`at`, or the next moment inside working hours (weekdays 9:00 to 18:00 UTC)."""
    while True:
        if at.weekday() >= 5:
            at = datetime.combine(at.date() + timedelta(days=7 - at.weekday()), time(WORK_START), UTC)
        elif at.hour < WORK_START:
            return at.replace(hour=WORK_START, minute=at.minute, second=at.second)
        elif at.hour >= WORK_END:
            at = datetime.combine(at.date() + timedelta(days=1), time(WORK_START), UTC)
        else:
            return at


def add_working_hours(at: datetime, hours: float) -> datetime:
    """`at` plus `hours` of working time (nine hours a weekday)."""
    at = working_time(at)
    left = hours
    while True:
        day_end = at.replace(hour=WORK_END, minute=0, second=0, microsecond=0)
        room = (day_end - at).total_seconds() / 3600
        if left <= room:
            return at + timedelta(seconds=int(left * 3600))
        left -= room
        at = working_time(day_end)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


_TOPICS = (
    "trail search", "offline maps", "kit list", "trip planner", "elevation profile", "weather alert",
    "route sharing", "sign-in", "photo upload", "trail reviews", "notifications", "GPX export",
)  # fmt: skip
_TITLES = {
    "story": ("Improve {}", "Add filters to {}", "Faster {}", "Show {} on the trip page"),
    "bug": ("Fix crash in {}", "{} shows stale data", "Wrong totals in {}", "{} fails offline"),
    "task": ("Upgrade libraries behind {}", "Clean up {} logs", "Document {}"),
}


@dataclass
class _Team:
    """What one team's generation needs to share between its passes."""

    index: int
    prefix: str
    rng: random.Random
    developers: tuple[str, ...]
    main: list[tuple[datetime, str]] = field(default_factory=list)  # (committed_at, sha) on main


def _item_transitions(
    rng: random.Random, created: datetime, end: datetime, kind: str
) -> tuple[list[Transition], datetime | None, datetime | None]:
    """The item's transitions up to `end`, its start and (first) done times."""
    out = [Transition(created, "", TODO)]
    never = 0.04 if kind == "story" else 0.06
    if rng.random() < never:
        return out, None, None
    if rng.random() < 0.03:  # closed from the backlog (a duplicate): done without ever being started
        closed = add_working_hours(created, _lognormal(rng, 30.0, 1.0))
        if closed <= end:
            out.append(Transition(closed, TODO, DONE))
        return out, None, None
    # Backlog wait: bugs are picked up sooner than stories.
    wait = _lognormal(rng, 20.0 if kind == "bug" else 40.0, 1.1)
    started = add_working_hours(created, wait)
    steps: list[tuple[float, str]] = [(0.0, IN_PROGRESS)]
    active = _lognormal(rng, 12.0 if kind != "task" else 6.0, 0.8)
    if rng.random() < 0.15:  # blocked part-way through
        part = active * rng.uniform(0.2, 0.7)
        steps.append((part, BLOCKED))
        steps.append((_lognormal(rng, 10.0, 0.9), IN_PROGRESS))
        active -= part
    steps.append((active, IN_REVIEW))
    if rng.random() < 0.2:  # changes asked in review
        steps.append((_lognormal(rng, 4.0, 0.7), IN_PROGRESS))
        steps.append((_lognormal(rng, 3.0, 0.7), IN_REVIEW))
    steps.append((_lognormal(rng, 4.0, 0.9), DONE))
    if rng.random() < 0.06:  # reopened after done
        steps.append((_lognormal(rng, 30.0, 0.8), IN_PROGRESS))
        steps.append((_lognormal(rng, 5.0, 0.7), IN_REVIEW))
        steps.append((_lognormal(rng, 2.0, 0.7), DONE))
    at, state, done = started, TODO, None
    for hours, to in steps:
        at = add_working_hours(at, hours) if hours else at
        if at > end:
            break
        out.append(Transition(at, state, to))
        state = to
        if to == DONE and done is None:
            done = at
    return out, (started if started <= end else None), done


def _work(
    team: _Team, start: datetime, end: datetime, items_per_day: float, code: bool, history: History
) -> None:
    rng = team.rng
    day = start
    n = 0
    while day < end:
        weekday = day.weekday() < 5
        rate = items_per_day * (1.3 if weekday else 0.25)
        count = _poisson(rng, rate)
        for _ in range(count):
            n += 1
            kind = rng.choices(("story", "bug", "task"), (0.65, 0.27, 0.08))[0]
            created = day + timedelta(
                seconds=rng.randint(8 * 3600, 19 * 3600) if weekday else rng.randint(36_000, 72_000)
            )
            if created >= end:
                continue
            key = f"{team.prefix}-{n}"
            topic = rng.choice(_TOPICS)
            title = rng.choice(_TITLES[kind]).format(topic)
            transitions, started, done = _item_transitions(rng, created, end, kind)
            labels = (f"team-{team.index + 1}", topic.replace(" ", "-"))
            history.items.append(WorkItem(key, title, kind, labels, created, tuple(transitions)))
            if code and started is not None and kind != "task":
                _pull_request(team, key, title, started, done, end, history)
        day += timedelta(days=1)
    if code:  # chores straight on main, about one a week
        at = start
        while at < end:
            at = working_time(at + timedelta(seconds=rng.randint(216000, 1008000)))
            if at < end:
                sha = _sha(rng)
                author = rng.choice(team.developers)
                history.commits.append(Commit(sha, at, at, False, "main", "Chore: bump dependencies", author))
                team.main.append((at, sha))


def _poisson(rng: random.Random, rate: float) -> int:
    limit, k, p = math.exp(-rate), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _pull_request(
    team: _Team,
    key: str,
    title: str,
    started: datetime,
    done: datetime | None,
    end: datetime,
    history: History,
) -> None:
    rng = team.rng
    author = rng.choice(team.developers)
    first = add_working_hours(started, rng.uniform(0.2, 3.0))
    finish = done if done is not None else end
    if first > finish:  # a quick fix: its first commit as it starts
        first = started
    if first > end:
        return
    branch = f"feature/{key.lower()}"
    shas: list[str] = []
    at = first
    span = max((finish - first).total_seconds() / 3600, 0.5)
    for i in range(1 + min(int(_lognormal(rng, 3.5, 0.6)), 7)):
        if i:
            at = add_working_hours(at, rng.uniform(0.05, 0.5) * span / 3)
        if i and (at > finish or at > end):
            break
        sha = _sha(rng)
        shas.append(sha)
        history.commits.append(Commit(sha, at, at, False, branch, f"{key}: {title}", author))
    number = len(history.pull_requests) + 1 + team.index * 1_000_000
    created = first + timedelta(seconds=rng.randint(300, 5400))
    if done is not None and created > done:
        created = first + (done - first) / 2
    if done is None or created > done:
        if created <= end:
            history.pull_requests.append(
                PullRequest(number, title, created, first, None, "", tuple(shas), "")
            )
        return
    merged = done - timedelta(seconds=rng.randint(60, 1800))
    merged = max(merged, created)
    style = rng.choices(("squash", "merge", "rebase"), (0.6, 0.3, 0.1))[0]
    if style == "rebase":
        merge_sha = shas[-1]
        for sha in shas:
            team.main.append((merged, sha))
    else:
        merge_sha = _sha(rng)
        message = (
            f"{title} (#{number})" if style == "squash" else f"Merge pull request #{number} from {branch}"
        )
        # A squash commit keeps the author's time of the first commit (as GitHub does); a merge does not.
        authored = first if style == "squash" else merged
        history.commits.append(Commit(merge_sha, authored, merged, style == "merge", "main", message, author))
        team.main.append((merged, merge_sha))
    history.pull_requests.append(
        PullRequest(number, title, created, first, merged, merge_sha, tuple(shas), style)
    )


def _deployments(
    team: _Team, start: datetime, end: datetime, failure_rate: float, release_weeks: int, history: History
) -> None:
    rng = team.rng
    main = sorted(team.main)
    services = (f"{team.prefix.lower()}-api", f"{team.prefix.lower()}-web")
    pending = 0  # index into main: first commit not yet deployed successfully
    run = 0
    last_ok_sha = ""
    next_release = start + timedelta(weeks=release_weeks)
    releases = 0
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)

    def deploy(at: datetime, shas: tuple[str, ...], ok: bool, environment: str = PRODUCTION) -> Deployment:
        nonlocal run
        run += 1
        run_id = f"{team.prefix.lower()}-run-{run}"
        first = Deployment(f"{run_id}-1", run_id, services[0], environment, at, ok, shas)
        history.deployments.append(first)
        if environment == PRODUCTION and rng.random() < 0.18:  # the web front end too, same run
            second = Deployment(
                f"{run_id}-2", run_id, services[1], environment, at + timedelta(minutes=4), ok, shas
            )
            history.deployments.append(second)
        return first

    while day < end:
        if day.weekday() < 5:
            at = day + timedelta(seconds=rng.randint(46800, 61200))
            upto = pending
            while upto < len(main) and main[upto][0] < at:
                upto += 1
            if at < end and upto > pending and rng.random() < 0.85:
                shas = tuple(sha for _, sha in main[pending:upto])
                if rng.random() < 0.06:
                    deploy(at - timedelta(minutes=40), shas, True, STAGING)
                ok = rng.random() >= failure_rate
                dep = deploy(at, shas, ok)
                if ok:
                    pending, last_ok_sha = upto, shas[-1]
                else:
                    fix_at = at + timedelta(seconds=int(_lognormal(rng, 3.0, 0.8) * 3600))
                    if rng.random() < 0.5:  # a hotfix commit on main, then all of it again
                        sha = _sha(rng)
                        hot = fix_at - timedelta(seconds=rng.randint(1200, 3600))
                        author = rng.choice(team.developers)
                        history.commits.append(
                            Commit(sha, hot, hot, False, "main", "Hotfix: revert bad config", author)
                        )
                        main.insert(upto, (hot, sha))
                        upto += 1
                        fix_shas = (*shas, sha)
                    else:  # a rollback: the previous version again, no new commits
                        fix_shas = ()
                    if fix_at < end:
                        deploy(fix_at, fix_shas, True)
                        if fix_shas:
                            pending, last_ok_sha = upto, fix_shas[-1]
                    if rng.random() < 0.5:
                        opened = at + timedelta(seconds=rng.randint(300, 5400))
                        resolved = max(fix_at, opened) + timedelta(seconds=rng.randint(300, 2700))
                        if opened < end:
                            history.incidents.append(
                                Incident(
                                    f"INC-{team.prefix}-{len(history.incidents) + 1}",
                                    dep.service,
                                    opened,
                                    resolved if resolved < end else None,
                                    dep.external_id,
                                )
                            )
            if at >= next_release and last_ok_sha and at < end:
                releases += 1
                history.releases.append(Release(f"{team.prefix.lower()}-v1.{releases}.0", at, last_ok_sha))
                next_release += timedelta(weeks=release_weeks)
        day += timedelta(days=1)
    # One incident no deployment caused (an outage upstream), still open at the end.
    opened = end - timedelta(seconds=rng.randint(7200, 72000))
    history.incidents.append(
        Incident(f"INC-{team.prefix}-{len(history.incidents) + 1}", services[0], opened, None, "")
    )


def generate(
    seed: int,
    *,
    start: date,
    days: int,
    teams: int = 1,
    items_per_day: float = 1.65,
    failure_rate: float = 0.12,
    release_weeks: int = 3,
    code: bool = True,
    prefix: str = "TRAIL",
) -> History:
    """A team's (or `teams` teams') delivery history over `days` from `start` (midnight UTC).

    Same arguments, same history. `items_per_day` is per team and calendar day (1.65 ≈ 600 items a
    year); `code=False` leaves out commits, pull requests, deployments, incidents and releases (the
    work items alone, quickly, for large flow benchmarks).
    """
    if days < 1 or teams < 1:
        raise ValueError("days and teams must be at least 1")
    begin = datetime.combine(start, time(0), UTC)
    end = begin + timedelta(days=days)
    history = History(begin, end)
    for index in range(teams):
        rng = random.Random(f"{seed}:{index}")  # noqa: S311 - simulation, not secrets
        team_prefix = prefix if teams == 1 else f"{prefix}{index + 1}"
        developers = tuple(f"dev{index + 1}-{n}@example.com" for n in range(1, 7))
        team = _Team(index, team_prefix, rng, developers)
        _work(team, begin, end, items_per_day, code, history)
        if code:
            _deployments(team, begin, end, failure_rate, release_weeks, history)
    history.commits.sort(key=lambda c: (c.committed_at, c.sha))
    history.deployments.sort(key=lambda d: (d.deployed_at, d.external_id))
    history.incidents.sort(key=lambda i: i.opened_at)
    return history


EVENT_COLUMNS = (
    "kind", "id", "at", "title", "type", "labels", "from_state", "to_state", "service", "environment",
    "succeeded", "commits", "run_id", "resolved_at", "authored_at", "is_merge", "branch",
)  # fmt: skip


def _iso(at: datetime | None) -> str:
    return "" if at is None else at.isoformat().replace("+00:00", "Z")


def to_event_rows(history: History) -> Iterator[dict[str, str]]:
    """The history as rows of the generic event format (docs/delivery.md, "The generic event format"):
    every row has all of `EVENT_COLUMNS` (empty when they do not apply), lists space-separated, times
    ISO 8601 in UTC. Items come before their transitions; commits before the deployments and releases
    that name them. The format has no pull requests: they are left out (so squash merges' lead time
    starts at the squash commit's author date, which the generator sets to the first commit's)."""
    blank = dict.fromkeys(EVENT_COLUMNS, "")

    def row(kind: str, ident: str, at: datetime, **values: str) -> dict[str, str]:
        return {**blank, "kind": kind, "id": ident, "at": _iso(at), **values}

    for item in history.items:
        yield row("item", item.external_id, item.created_at, title=item.title, type=item.item_type,
                  labels=" ".join(item.labels))  # fmt: skip
        for t in item.transitions:
            yield row("transition", item.external_id, t.at, from_state=t.from_state, to_state=t.to_state)
    for c in history.commits:
        yield row("commit", c.sha, c.committed_at, authored_at=_iso(c.authored_at),
                  is_merge="true" if c.is_merge else "false", branch=c.branch)  # fmt: skip
    for d in history.deployments:
        yield row("deployment", d.external_id, d.deployed_at, service=d.service, environment=d.environment,
                  succeeded="true" if d.succeeded else "false", commits=" ".join(d.commit_shas),
                  run_id=d.run_id)  # fmt: skip
    for i in history.incidents:
        yield row("incident", i.external_id, i.opened_at, service=i.service, resolved_at=_iso(i.resolved_at))
    for r in history.releases:
        yield row("release", r.name, r.at, commits=r.sha)
