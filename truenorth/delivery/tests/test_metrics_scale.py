"""The streamed flow path (services.metrics.item_table + flow_arrays) gives exactly the reference's figures
(flow.flow_metrics over every item's history as objects) on randomized histories with reopened, never
started, late-created and never-moved items, ties and whole-second times, over two state mappings; and
the DORA records it skips (commits no deployment lists) change no figure. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict

import pytest

from truenorth.delivery import dora, flow, flow_arrays
from truenorth.delivery.models import (
    Commit,
    DeliveryItem,
    DeliverySource,
    Deployment,
    PullRequest,
    StateTransition,
)
from truenorth.delivery.services import metrics
from truenorth.delivery.services.metrics_flow import EpochMicros
from truenorth.orgs.models import Organisation

BASE = dt.datetime(2025, 6, 2, 8, tzinfo=dt.UTC)
STATES = ["To Do", "In Progress", "Review", "Blocked", "Done", " done ", "Closed", "Doing", "Shipped", "Odd"]
MAPPINGS = [
    {"started": ["In Progress", "Doing"], "done": ["Done"], "waiting": ["Review", "Blocked"]},
    {"started": ["Doing"], "done": ["Shipped", "Closed"]},
    {},  # the defaults: every state neither done nor "to do"-like is started
]


def at(rng: random.Random, after: dt.datetime) -> dt.datetime:
    whole = rng.random() < 0.3  # Django stores whole seconds without a fraction
    return after + dt.timedelta(
        seconds=rng.randrange(0, 12 * 86_400), microseconds=0 if whole else rng.randrange(1, 10**6)
    )


def build(org: Organisation, seed: int, items: int) -> list[DeliverySource]:
    rng = random.Random(seed)
    sources = [
        DeliverySource.objects.create(organisation=org, name=f"Board {n}", kind="events", state_mapping=m)
        for n, m in enumerate(MAPPINGS)
    ]
    sources.append(  # a second source sharing the first mapping: computed in the same run
        DeliverySource.objects.create(
            organisation=org, name="Board 3", kind="events", state_mapping=MAPPINGS[0]
        )
    )
    steps = []
    for n in range(items):
        source = sources[n % len(sources)]
        created = at(rng, BASE - dt.timedelta(days=20)) + dt.timedelta(days=rng.randrange(0, 60))
        item = DeliveryItem(organisation=org, source=source, external_id=f"K-{n // 2}", created_at=created)
        item.save()
        when = created
        for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 9])):
            if rng.random() < 0.1:  # a tie: two states at the same time, kept in the order stored
                pass
            else:
                when = (
                    at(rng, when) if rng.random() < 0.8 else when - dt.timedelta(hours=rng.randrange(1, 48))
                )
            steps.append(StateTransition(item=item, at=when, to_state=rng.choice(STATES)))
    StateTransition.objects.bulk_create(steps, ignore_conflicts=True)
    return sources


def reference(rows: list[metrics.SourceRow], start: dt.datetime, end: dt.datetime) -> flow.FlowMetrics:
    """The reference, as the services computed it before: objects, one flow_metrics run per mapping."""
    ids = [r.id for r in rows]
    steps: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for item_id, when, state in (
        StateTransition.objects.filter(item__source_id__in=ids, at__lte=end)
        .order_by("pk")
        .values_list("item_id", "at", "to_state")
    ):
        steps[item_id].append((when, state))
    by_source: dict[int, list[flow.ItemHistory]] = defaultdict(list)
    for pk, source, external_id, created in (
        DeliveryItem.objects.filter(source_id__in=ids, created_at__lte=end)
        .order_by("pk")
        .values_list("pk", "source_id", "external_id", "created_at")
    ):
        by_source[source].append(flow.ItemHistory(external_id, created, steps[pk]))
    return metrics.flow_of(rows, by_source, start=start, end=end)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_flow_equals_the_reference(owner, seed: int) -> None:
    org = owner.membership.organisation
    sources = build(org, seed, 240)
    rows = metrics.sources_in(owner.membership, metrics.Scope())
    rng = random.Random(seed)
    for _ in range(4):
        start = BASE + dt.timedelta(days=rng.randrange(-10, 30), seconds=rng.randrange(86_400))
        end = start + dt.timedelta(days=rng.randrange(1, 60), microseconds=rng.randrange(10**6))
        table = metrics.item_table(rows, end)
        for chosen in (rows, rows[:1], [rows[0], rows[3]], rows[1:3], list(reversed(rows))):
            want = reference(chosen, start, end)
            got = metrics.flow_of(chosen, table, start=start, end=end)
            assert got == want
        # the cases the comparison must have met
        assert want.never_started > 0 and want.wip > 0 and want.completed
    one = metrics.flow_for(owner.membership, source_id=sources[1].pk, start=start, end=end)
    assert one == reference([r for r in rows if r.id == sources[1].pk], start, end)


@pytest.mark.django_db
def test_a_reopened_item_is_not_done_and_a_done_again_item_counts_from_its_last_done(owner) -> None:
    org = owner.membership.organisation
    source = DeliverySource.objects.create(
        organisation=org, name="Board", kind="events", state_mapping=MAPPINGS[0]
    )
    day = BASE.replace(microsecond=0)

    def item(key: str, *moves: tuple[int, str]) -> None:
        made = DeliveryItem.objects.create(organisation=org, source=source, external_id=key, created_at=day)
        for n, state in moves:
            StateTransition.objects.create(item=made, at=day + dt.timedelta(days=n), to_state=state)

    item("R-1", (1, "In Progress"), (3, "Done"), (4, "In Progress"))  # reopened: in progress
    item("R-2", (1, "In Progress"), (2, "Done"), (5, "Review"), (6, "Done"))  # done again on day 6
    item("R-3", (2, "Done"))  # done without being started
    item("R-4")  # never moved
    rows = metrics.sources_in(owner.membership, metrics.Scope())
    end = day + dt.timedelta(days=10)
    got = metrics.flow_of(rows, metrics.item_table(rows, end), start=day, end=end)
    assert got == reference(rows, day, end)
    assert [(key, cycle) for key, _, cycle in got.completed] == [("R-2", 5.0)]
    assert got.wip == 1 and got.ages[0][:2] == ("R-1", "In Progress") and got.never_started == 1
    assert got.flow_efficiency == pytest.approx(1 / 2)  # active day 1-2, waiting day 5-6 (done between)
    assert got.cfd[-1][1] == {"not_started": 1, "in_progress": 1, "done": 2}


@pytest.mark.django_db
def test_times_in_microseconds_are_exact(owner) -> None:
    org = owner.membership.organisation
    source = DeliverySource.objects.create(organisation=org, name="Board", kind="events")
    made = DeliveryItem.objects.create(organisation=org, source=source, external_id="T", created_at=BASE)
    times = [BASE, BASE + dt.timedelta(microseconds=1), BASE + dt.timedelta(days=400, microseconds=999_999)]
    for n, when in enumerate(times):
        StateTransition.objects.create(item=made, at=when, to_state=f"S{n}")
    got = StateTransition.objects.order_by("at").annotate(us=EpochMicros("at")).values_list("us", flat=True)
    assert list(got) == [flow_arrays.micros(t) for t in times]
    assert [flow_arrays.at_micros(u) for u in got] == times


@pytest.mark.django_db
def test_dora_skips_only_commits_no_deployment_lists(owner) -> None:
    org = owner.membership.organisation
    source = DeliverySource.objects.create(organisation=org, name="Repo", kind="git")
    for n in range(6):
        Commit.objects.create(
            source=source, sha=f"c{n}", authored_at=BASE + dt.timedelta(hours=n), committed_at=BASE
        )
    # a squash merge: its new sha is deployed, its pull request's commits are not
    PullRequest.objects.create(
        source=source,
        number=1,
        created_at=BASE,
        first_commit_at=BASE - dt.timedelta(hours=5),
        merged_at=BASE + dt.timedelta(hours=6),
        merge_sha="s1",
        commit_shas=["c4", "c5"],
    )
    PullRequest.objects.create(source=source, number=2, created_at=BASE, first_commit_at=BASE, merge_sha="zz")
    Deployment.objects.create(
        source=source,
        external_id="D1",
        environment="production",
        deployed_at=BASE + dt.timedelta(hours=8),
        commit_shas=["c0", "c1", "s1"],
    )
    Deployment.objects.create(
        source=source, external_id="D2", environment="production", deployed_at=BASE + dt.timedelta(hours=9)
    )
    rows = metrics.sources_in(owner.membership, metrics.Scope())
    end = BASE + dt.timedelta(days=2)
    inputs = metrics.dora_inputs(rows, end)[source.pk]
    assert sorted(c.sha for c in inputs.commits) == ["c0", "c1"]
    assert [p.merge_sha for p in inputs.pulls] == ["s1"]
    everything = dora.dora_metrics(
        inputs.deployments,
        [dora.CommitRecord(s, a) for s, a in Commit.objects.values_list("sha", "authored_at")],
        [
            dora.PullRecord(f, m, s, tuple(c))
            for f, m, s, c in PullRequest.objects.values_list(
                "first_commit_at", "merged_at", "merge_sha", "commit_shas"
            )
        ],
        inputs.incidents,
        start=BASE,
        end=end,
        production=metrics.PRODUCTION,
    )
    got = metrics.dora_of(inputs, start=BASE, end=end, year=everything.year)
    assert got == everything
    assert got.lead_time_samples == 3 and got.lead_time_hours == 8.0  # c0 8 h, c1 7 h, s1 13 h


def test_pure_table_equals_the_reference_without_a_database() -> None:
    rng = random.Random(7)
    start, end = BASE, BASE + dt.timedelta(days=30, microseconds=5)
    table = flow_arrays.ItemTable()
    runs: dict[str, list[flow.ItemHistory]] = defaultdict(list)
    groups: dict[str, list[int]] = defaultdict(list)
    for source, mapping in enumerate(MAPPINGS):
        raw = json.dumps(mapping, sort_keys=True)
        groups[raw].append(source)
        categories = flow_arrays.Categories(flow.StateMapping.from_config(mapping))
        for n in range(150):
            created = at(rng, BASE - dt.timedelta(days=10))
            moves = sorted((at(rng, created), rng.choice(STATES)) for _ in range(rng.randrange(0, 7)))
            runs[raw].append(flow.ItemHistory(f"P-{n}", created, moves))
            steps = [(flow_arrays.micros(w), s) for w, s in moves if w <= end]
            if created <= end:
                table.add(source * 1000 + n, source, f"P-{n}", flow_arrays.micros(created), steps, categories)
    want = metrics._merge(
        [
            flow.flow_metrics(items, flow.StateMapping.from_config(json.loads(raw)), start=start, end=end)
            for raw, items in sorted(runs.items())
        ]
    )
    got = flow_arrays.flow_metrics(
        table,
        [
            flow_arrays.Group(flow.StateMapping.from_config(json.loads(r)), g)
            for r, g in sorted(groups.items())
        ],
        start=start,
        end=end,
    )
    assert got == want
    with pytest.raises(ValueError):
        flow_arrays.flow_metrics(table, [], start=end, end=start)
    assert flow_arrays.flow_metrics(table, [], start=start, end=end).wip == 0


@pytest.mark.django_db
def test_the_json_lists_for_charts_are_bounded_and_keep_the_newest_done_and_oldest_in_progress(
    owner, monkeypatch
) -> None:
    org = owner.membership.organisation
    source = DeliverySource.objects.create(
        organisation=org, name="Board", kind="events", state_mapping=MAPPINGS[0]
    )
    day = BASE.replace(microsecond=0)
    for n in range(5):
        made = DeliveryItem.objects.create(
            organisation=org,
            source=source,
            external_id=f"C-{n}",
            created_at=day,
            item_type=" Bug" if n < 2 else "Story",
        )
        StateTransition.objects.create(item=made, at=day + dt.timedelta(days=n), to_state="In Progress")
        if n % 2 == 0:
            StateTransition.objects.create(item=made, at=day + dt.timedelta(days=n + 1), to_state="Done")
    monkeypatch.setattr(metrics, "CHART_POINTS", 1)
    rows = metrics.sources_in(owner.membership, metrics.Scope())
    end = day + dt.timedelta(days=10)
    table = metrics.item_table(rows, end)
    m = metrics.flow_of(rows, table, start=day, end=end)
    assert [key for key, _, _ in m.completed] == ["C-0", "C-2", "C-4"]
    assert table.ids_of_type(lambda kind: kind.strip().casefold() == "bug") == {"C-0", "C-1"}
    assert table.ids_of_type(lambda kind: kind == "Story", sources={source.pk + 1}) == set()
    assert m.completed[-1:] == [m.completed[2]] and m.completed[-1][0] == "C-4"
    out = metrics.flow_out(m)
    assert out["completed_count"] == 3 and [c["id"] for c in out["completed"]] == ["C-4"]
    assert out["wip"] == 2 and [a["id"] for a in out["ages"]] == ["C-1"]
    with pytest.raises(IndexError):
        m.completed[3]
