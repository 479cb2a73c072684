"""The synthetic delivery history: deterministic, realistic, and holding every edge case the metrics meet."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from truenorth.delivery import synthetic
from truenorth.delivery.synthetic import DONE, IN_PROGRESS, TODO, add_working_hours, generate, working_time

START = date(2025, 12, 1)


@pytest.fixture(scope="module")
def year() -> synthetic.History:
    return generate(7, start=START, days=365)


def test_same_seed_same_history_other_seed_other_history(year: synthetic.History) -> None:
    again = generate(7, start=START, days=365)
    assert again.items == year.items
    assert again.commits == year.commits
    assert again.deployments == year.deployments
    assert again.incidents == year.incidents
    assert generate(8, start=START, days=365).items != year.items


def test_a_year_has_plausible_counts(year: synthetic.History) -> None:
    counts = year.counts()
    assert 450 <= counts["items"] <= 750
    assert 2_000 <= counts["transitions"] <= 4_000
    assert 1_400 <= counts["commits"] <= 3_000
    assert 200 <= counts["deployments"] <= 400
    assert 10 <= counts["releases"] <= 20
    assert counts["incidents"] >= 5


def test_working_hours_hand_computed() -> None:
    friday_evening = datetime(2026, 1, 2, 19, 30, tzinfo=UTC)  # a Friday
    assert working_time(friday_evening) == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert working_time(datetime(2026, 1, 5, 7, 15, tzinfo=UTC)) == datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
    # Friday 16:00 + 4 working hours: 2 on Friday, 2 on Monday.
    assert add_working_hours(datetime(2026, 1, 2, 16, 0, tzinfo=UTC), 4) == datetime(
        2026, 1, 5, 11, 0, tzinfo=UTC
    )
    assert add_working_hours(datetime(2026, 1, 5, 9, 0, tzinfo=UTC), 9) == datetime(
        2026, 1, 5, 18, 0, tzinfo=UTC
    )


def test_transitions_chain_inside_the_window(year: synthetic.History) -> None:
    for item in year.items:
        first = item.transitions[0]
        assert (first.from_state, first.to_state, first.at) == ("", TODO, item.created_at)
        for before, after in zip(item.transitions, item.transitions[1:], strict=False):
            assert after.from_state == before.to_state
            assert before.at <= after.at
        assert year.start <= item.created_at and item.transitions[-1].at <= year.end
        assert len({(t.at, t.to_state) for t in item.transitions}) == len(item.transitions)  # natural key
    assert len({item.external_id for item in year.items}) == len(year.items)


def test_the_edge_cases_are_there(year: synthetic.History) -> None:
    states = Counter(item.state for item in year.items)
    assert states[TODO] > 0 and states[DONE] > 0
    assert states[IN_PROGRESS] + states[synthetic.IN_REVIEW] + states[synthetic.BLOCKED] > 0  # still going
    reopened = [i for i in year.items if sum(t.to_state == DONE for t in i.transitions) > 1]
    assert len(reopened) > 10
    closed_unstarted = [i for i in year.items if [t.to_state for t in i.transitions] == [TODO, DONE]]
    assert closed_unstarted  # done without ever being started
    assert any(t.to_state == synthetic.BLOCKED for i in year.items for t in i.transitions)
    assert {i.item_type for i in year.items} == {"story", "bug", "task"}

    production = [d for d in year.deployments if d.environment == synthetic.PRODUCTION]
    failed = [d for d in production if not d.succeeded]
    runs = {d.run_id for d in production}
    assert 0.05 <= len({d.run_id for d in failed}) / len(runs) <= 0.2  # fix runs never fail
    assert len(runs) < len(production)  # several deployments in one pipeline run
    assert any(not d.commit_shas for d in production)  # rollbacks deploy no commits
    assert any(d.environment == synthetic.STAGING for d in year.deployments)
    by_time = sorted(production, key=lambda d: d.deployed_at)
    for deployment in failed:  # a fix follows every failure (unless the window ended first)
        later = [d for d in by_time if d.deployed_at > deployment.deployed_at]
        assert not later or any(d.succeeded for d in later)

    assert any(i.resolved_at is None for i in year.incidents)
    caused = [i for i in year.incidents if i.deployment_id]
    failed_ids = {d.external_id for d in failed}
    assert caused and all(i.deployment_id in failed_ids for i in caused)
    for incident in year.incidents:
        assert incident.resolved_at is None or incident.resolved_at > incident.opened_at


def test_pull_requests_and_merges(year: synthetic.History) -> None:
    shas = {c.sha: c for c in year.commits}
    styles = Counter(pr.merge_style for pr in year.pull_requests)
    assert styles["squash"] > styles["merge"] > styles["rebase"] > 0 and styles[""] > 0  # some still open
    for pr in year.pull_requests:
        assert pr.commit_shas and all(sha in shas for sha in pr.commit_shas)
        assert pr.first_commit_at == shas[pr.commit_shas[0]].authored_at <= pr.created_at
        if pr.merged_at is None:
            assert pr.merge_sha == ""
            continue
        assert pr.merge_sha in shas and pr.merged_at >= pr.created_at
        if pr.merge_style == "squash":  # lead time must start at the PR's first commit, not the squash
            assert pr.merge_sha not in pr.commit_shas and not shas[pr.merge_sha].is_merge
        elif pr.merge_style == "merge":
            assert shas[pr.merge_sha].is_merge
        else:
            assert pr.merge_sha == pr.commit_shas[-1]
    deployed = {sha for d in year.deployments for sha in d.commit_shas}
    assert deployed <= set(shas)
    for commit in year.commits:  # authored on weekdays in working hours (hotfixes whenever needed)
        if not commit.is_merge and not commit.message.startswith("Hotfix"):
            assert commit.authored_at.weekday() < 5 and 9 <= commit.authored_at.hour < 18


def test_releases_tag_deployed_commits(year: synthetic.History) -> None:
    deployed = {sha for d in year.deployments if d.succeeded for sha in d.commit_shas}
    assert all(r.sha in deployed for r in year.releases)
    assert len({r.name for r in year.releases}) == len(year.releases)


def test_teams_and_work_items_alone() -> None:
    history = generate(1, start=START, days=60, teams=3, code=False)
    assert history.commits == [] and history.deployments == []
    prefixes = {item.external_id.split("-")[0] for item in history.items}
    assert prefixes == {"TRAIL1", "TRAIL2", "TRAIL3"}
    with pytest.raises(ValueError):
        generate(1, start=START, days=0)


def test_event_rows_read_back_through_the_events_importer() -> None:
    import csv
    import io

    from truenorth.delivery.importers.base import BadRecord, DeploymentRecord, IncidentRecord
    from truenorth.delivery.importers.events import EventsCsvImporter

    history = generate(3, start=START, days=90)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=synthetic.EVENT_COLUMNS)
    writer.writeheader()
    writer.writerows(synthetic.to_event_rows(history))
    records = list(EventsCsvImporter().read(out.getvalue().encode()))
    assert not [r for r in records if isinstance(r, BadRecord)]
    kinds = Counter(type(r).__name__ for r in records)
    assert kinds == {
        "ItemRecord": len(history.items),
        "TransitionRecord": history.transition_count,
        "CommitRecord": len(history.commits),
        "DeploymentRecord": len(history.deployments),
        "IncidentRecord": len(history.incidents),
        "ReleaseRecord": len(history.releases),
    }
    deployments = {r.external_id: r for r in records if isinstance(r, DeploymentRecord)}
    for d in history.deployments:
        read = deployments[d.external_id]
        assert (read.run_id, read.deployed_at, read.succeeded, read.commit_shas, read.environment) == (
            d.run_id,
            d.deployed_at,
            d.succeeded,
            d.commit_shas,
            d.environment,
        )
    still_open = {r.external_id for r in records if isinstance(r, IncidentRecord) and r.resolved_at is None}
    assert still_open and still_open == {i.external_id for i in history.incidents if i.resolved_at is None}
