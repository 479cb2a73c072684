"""Process changes tested as experiments: marking one (a hypothesis with its history), comparing before
and after on stored delivery data (inline and as a background job), deciding through the hypotheses'
decision service; the same through the API, the CLI and the pages; permissions, other organisations,
stale versions and unchanged edit forms."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from truenorth import cli
from truenorth.delivery.models import DeliveryItem, DeliverySource, Deployment, ProcessChange, StateTransition
from truenorth.delivery.services import process
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis
from truenorth.hypotheses.services import create_hypothesis
from truenorth.jobs.models import Job
from truenorth.strategy.models import Product, Team

pytestmark = pytest.mark.django_db

CHANGED_ON = dt.date(2026, 6, 1)
T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
MAPPING = {"started": ["In Progress"], "done": ["Done"]}


def _item(source: DeliverySource, key: str, started: dt.datetime, cycle_days: float) -> None:
    item = DeliveryItem.objects.create(
        organisation=source.organisation, source=source, external_id=key, created_at=started
    )
    StateTransition.objects.create(item=item, at=started, to_state="In Progress")
    StateTransition.objects.create(item=item, at=started + dt.timedelta(days=cycle_days), to_state="Done")


def build(org, name: str = "Payments") -> Product:
    """Before the change: 12 items of 5-9.5 days, 6 deployments (2 failed). After: 24 items of about
    2 days, 12 deployments, none failed."""
    product = Product.objects.create(organisation=org, name=name)
    source = DeliverySource.objects.create(
        organisation=org, name=f"{name} Jira", kind="jira", product=product, state_mapping=MAPPING
    )
    before = [5.0, 6.5, 7.0, 8.0, 6.0, 9.5, 7.5, 6.8, 8.2, 5.5, 7.2, 6.1]
    for i, cycle in enumerate(before):
        _item(source, f"B-{i}", T0 - dt.timedelta(days=40 - 2 * i), cycle)  # done before T0 (at most -8.5+…)
    after = [2.0, 2.5, 3.0, 1.8, 2.2, 3.5, 2.7, 2.1, 2.9, 3.1, 2.4, 1.9]
    for i, cycle in enumerate(after * 2):
        _item(source, f"A-{i}", T0 + dt.timedelta(days=1 + i), cycle)
    for i in range(6):
        Deployment.objects.create(
            source=source,
            external_id=f"DB{i}",
            environment="production",
            deployed_at=T0 - dt.timedelta(days=35 - 5 * i),
            succeeded=i % 3 != 0,
        )
    for i in range(12):
        Deployment.objects.create(
            source=source,
            external_id=f"DA{i}",
            environment="production",
            deployed_at=T0 + dt.timedelta(days=1 + 3 * i),
        )
    return product


@pytest.fixture
def product(org_a) -> Product:
    return build(org_a)


def mark(persona, product: Product, **extra) -> ProcessChange:
    fields = {"title": "WIP limit lowered from 5 to 3", "changed_on": CHANGED_ON, **extra}
    return process.create_change(persona.membership, persona.user, product_id=product.pk, **fields)


# --- services --------------------------------------------------------------------------------------------


def test_marking_a_change_records_a_hypothesis_with_its_history(member, product) -> None:
    change = mark(member, product, description="The team agreed at the retro.")
    hypothesis = change.hypothesis
    assert hypothesis is not None and hypothesis.product_id == product.pk
    assert hypothesis.title == "Process change: WIP limit lowered from 5 to 3"
    assert hypothesis.state == Hypothesis.State.DRAFT
    assert hypothesis.metric_name == process.METRIC_NAME and "shorter cycle times" in hypothesis.outcome
    assert hypothesis.by_date == CHANGED_ON + dt.timedelta(days=42)
    experiment = hypothesis.experiments.get()
    assert experiment.kind == Experiment.Kind.BEFORE_AFTER and experiment.start_date == CHANGED_ON
    assert HistoryEntry.objects.filter(
        object_type="hypotheses.hypothesis", object_id=str(hypothesis.pk)
    ).exists()
    assert HistoryEntry.objects.filter(
        object_type="delivery.processchange", object_id=str(change.pk)
    ).exists()
    assert (change.before_days, change.after_days, change.version) == (42, 42, 1)


def test_comparison_on_stored_data_shows_the_improvement(member, product) -> None:
    change = mark(member, product)
    out = process.compare_change(member.membership, member.user, change.pk)
    assert isinstance(out, ProcessChange)
    stored = ProcessChange.objects.get(pk=change.pk)
    assert stored.computed_at is not None
    effects = {e["key"]: e for e in stored.comparison["effects"]}
    p50 = effects["cycle_time_p50"]
    assert (p50["n_before"], p50["n_after"]) == (12, 24)
    assert p50["verdict"] == "better" and p50["high"] < 0
    assert effects["throughput"]["n_before"] == 12 and effects["throughput"]["n_after"] == 24
    assert effects["throughput"]["effect"] == pytest.approx(2.0)
    assert effects["deployment_frequency"]["effect"] == pytest.approx(2.0)
    cfr = effects["change_failure_rate"]
    assert cfr["before"] == pytest.approx(2 / 6) and cfr["after"] == 0
    assert effects["time_to_restore"]["verdict"] == "too little data"
    assert stored.comparison["outcome"] == "validated"
    assert stored.comparison["after"]["partial"] is False
    assert stored.comparison["before"]["start"].startswith("2026-04-20")


def test_a_large_scope_is_compared_by_a_background_job(member, product, settings) -> None:
    settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS = 10
    change = mark(member, product)
    job = process.compare_change(member.membership, member.user, change.pk)
    assert isinstance(job, Job) and job.kind == process.COMPARE_KIND
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    stored = ProcessChange.objects.get(pk=change.pk)
    assert stored.comparison["outcome"] == "validated" and stored.job_id == job.pk
    assert job.result["link"] == process.change_url(stored)


def test_a_change_in_the_future_cannot_be_compared(member, product) -> None:
    change = mark(member, product, changed_on=dt.date(2199, 1, 1))
    with pytest.raises(process.ValidationFailed) as caught:
        process.compare_change(member.membership, member.user, change.pk)
    assert caught.value.field == "changed_on"


def test_deciding_concludes_the_hypothesis_like_any_other(member, product) -> None:
    change = mark(member, product)
    with pytest.raises(process.ValidationFailed) as caught:
        process.decide(member.membership, member.user, change.pk, decision="persevere", learning="x")
    assert caught.value.field == "comparison"
    process.compare_change(member.membership, member.user, change.pk)
    made = process.decide(
        member.membership,
        member.user,
        change.pk,
        decision="persevere",
        learning="Smaller batches flow faster.",
    )
    assert (made.decision, made.outcome) == ("persevere", "validated")
    assert "Cycle time, median" in made.observed
    hypothesis = Hypothesis.objects.get(process_changes=change)
    assert hypothesis.state == Hypothesis.State.CONCLUDED
    assert hypothesis.baseline is not None and hypothesis.target is not None
    assert hypothesis.baseline > hypothesis.target
    assert HistoryEntry.objects.filter(object_type="hypotheses.decision", object_id=str(made.pk)).exists()
    with pytest.raises(process.Conflict):
        process.decide(member.membership, member.user, change.pk, decision="stop", learning="again")
    with pytest.raises(process.ValidationFailed) as caught:
        change2 = mark(member, product, title="Pairing on reviews")
        process.compare_change(member.membership, member.user, change2.pk)
        process.decide(member.membership, member.user, change2.pk, decision="maybe", learning="x")
    assert caught.value.field == "decision"
    # the failed decision left its hypothesis as it was (one transaction)
    assert Hypothesis.objects.get(process_changes=change2).state == Hypothesis.State.DRAFT


def test_edits_are_versioned_and_an_unchanged_edit_changes_nothing(member, product, org_a) -> None:
    change = mark(member, product)
    process.compare_change(member.membership, member.user, change.pk)
    same = process.update_change(
        member.membership, member.user, change.pk, version=1, title=change.title, before_days=42
    )
    assert same.version == 1 and same.comparison
    renamed = process.update_change(member.membership, member.user, change.pk, version=1, title="WIP limit 3")
    assert renamed.version == 2 and renamed.comparison  # a new title keeps the comparison
    with pytest.raises(process.Conflict):
        process.update_change(member.membership, member.user, change.pk, version=1, title="stale")
    moved = process.update_change(member.membership, member.user, change.pk, version=2, after_days=28)
    assert moved.version == 3 and moved.comparison == {} and moved.computed_at is None
    for field, value in (
        ("before_days", 3),
        ("after_days", 400),
        ("changed_on", "01/06/2026"),
        ("title", " "),
    ):
        with pytest.raises(process.ValidationFailed) as caught:
            process.update_change(member.membership, member.user, change.pk, version=3, **{field: value})
        assert caught.value.field == field
    other_team = Team.objects.create(organisation=product.organisation, name="Elsewhere")
    assert process.update_change(
        member.membership, member.user, change.pk, version=3, team_id=other_team.pk
    ).team


# --- API -------------------------------------------------------------------------------------------------


def api_url(*parts: object) -> str:
    return "/api/v1/orgs/alpha/delivery/changes" + "".join(f"/{p}" for p in parts)


def test_api_flow(member, product) -> None:
    client = member.api()
    body = {"title": "Pairing on reviews", "changed_on": "2026-06-01", "product_id": product.pk}
    created = client.post(api_url(), body, content_type="application/json")
    assert created.status_code == 201, created.content
    change = created.json()
    assert change["hypothesis_state"] == "draft" and change["comparison"] == {}
    listed = client.get(api_url(), {"product_id": product.pk}).json()
    assert [c["id"] for c in listed] == [change["id"]]
    compared = client.post(api_url(change["id"], "compare"))
    assert compared.status_code == 200
    assert compared.json()["comparison"]["effects"][0]["key"] == "cycle_time_p50"
    patched = client.patch(api_url(change["id"]), {"version": 1, "description": "Two people per review."},
                           content_type="application/json")  # fmt: skip
    assert patched.status_code == 200 and patched.json()["version"] == 2
    for missing in (
        client.patch(api_url(change["id"]), {"title": "x"}, content_type="application/json"),
        client.delete(api_url(change["id"])),
    ):
        assert missing.status_code == 422 and "version" in json.dumps(missing.json()["errors"])
    stale = client.patch(api_url(change["id"]), {"version": 1, "title": "x"}, content_type="application/json")
    assert stale.status_code == 409 and stale.json()["errors"][0]["field"] == "version"
    decided = client.post(
        api_url(change["id"], "decision"),
        {"decision": "pivot", "learning": "Pairing helped review time, not the rest."},
        content_type="application/json",
    )
    assert decided.status_code == 201 and decided.json()["decision"] == "pivot"
    assert client.get(api_url(change["id"])).json()["hypothesis_state"] == "concluded"
    assert client.delete(api_url(change["id"]) + "?version=1").status_code == 409
    assert client.delete(api_url(change["id"]) + "?version=2").status_code == 204
    assert Hypothesis.objects.filter(pk=change["hypothesis_id"]).exists()  # the record stays


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "", "changed_on": "2026-06-01"}, "title"),
        ({"title": "x", "changed_on": "2026-13-01"}, "changed_on"),
        ({"title": "x", "changed_on": "2026-06-01", "before_days": 6}, "before_days"),
        ({"title": "x", "changed_on": "2026-06-01", "after_days": 366}, "after_days"),
        ({"title": "x", "changed_on": "1800-06-01"}, "changed_on"),
        ({"title": "x", "changed_on": "2026-06-01", "color": "red"}, "color"),
    ],
)
def test_api_bad_input_names_the_field(member, product, body, field) -> None:
    response = member.api().post(
        api_url(), {"product_id": product.pk, **body}, content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert field in json.dumps(response.json()["errors"])


def test_api_permissions_and_other_organisations(member, stakeholder, outsider, product, org_b) -> None:
    change = mark(member, product)
    other = build(org_b, "Secret")
    body = {"title": "x", "changed_on": "2026-06-01", "product_id": product.pk}
    assert stakeholder.api().post(api_url(), body, content_type="application/json").status_code == 403
    assert stakeholder.api().get(api_url(change.pk)).status_code == 200
    assert stakeholder.api().post(api_url(change.pk, "compare")).status_code == 403
    assert member.api_read().post(api_url(), body, content_type="application/json").status_code == 403
    # another organisation's change is not found, whatever the method
    out = outsider.api()
    base = f"/api/v1/orgs/alpha/delivery/changes/{change.pk}"
    assert out.get(base).status_code == 404
    assert out.post(base + "/compare").status_code == 404
    theirs = process.create_change(
        outsider.membership, outsider.user, product_id=other.pk, title="Theirs", changed_on=CHANGED_ON
    )
    client = member.api()
    assert client.get(api_url(theirs.pk)).status_code == 404
    assert client.post(api_url(theirs.pk, "compare")).status_code == 404
    assert (
        client.patch(
            api_url(theirs.pk), {"version": 1, "title": "x"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert client.delete(api_url(theirs.pk) + "?version=1").status_code == 404
    decision = {"decision": "stop", "learning": "x"}
    assert (
        client.post(api_url(theirs.pk, "decision"), decision, content_type="application/json").status_code
        == 404
    )
    foreign = {"title": "x", "changed_on": "2026-06-01", "product_id": other.pk}
    response = client.post(api_url(), foreign, content_type="application/json")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "product_id"
    assert [c["id"] for c in client.get(api_url()).json()] == [change.pk]


# --- CLI -------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def run(capsys, persona, *args: str) -> tuple[int, str, str]:
    code = cli.main(["delivery", "change", *args, "--org", "alpha", "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_flow(capsys, member, product) -> None:
    code, out, err = run(capsys, member, "add", "--title", "Pairing on reviews", "--date", "2026-06-01",
                         "--product", "payments")  # fmt: skip
    assert code == 0, err
    change = ProcessChange.objects.get()
    assert f"#{change.pk}" in out
    code, out, err = run(capsys, member, "list", "--json")
    assert code == 0 and json.loads(out)[0]["title"] == "Pairing on reviews"
    code, out, err = run(capsys, member, "compare", str(change.pk))
    assert code == 0, err
    assert "Cycle time, median" in out and "better" in out and "Suggested outcome: validated" in out
    code, out, err = run(capsys, member, "decide", str(change.pk), "persevere", "--learning", "Keep pairing.")
    assert code == 0, err
    assert Decision.objects.get().decision == "persevere"


def test_cli_bad_input_is_one_line_and_exit_2(capsys, member, stakeholder, product) -> None:
    for args, fragment in (
        (("add", "--title", "x", "--date", "2026-02-30", "--product", "payments"), "date"),
        (("add", "--title", "x", "--date", "2026-06-01", "--product", "nope"), "No product"),
        (
            ("add", "--title", "x", "--date", "2026-06-01", "--product", "payments", "--before", "3"),
            "7 to 365",
        ),
        (("compare", "999999"), "No such process change"),
    ):
        code, _, err = run(capsys, member, *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and fragment in err, err
    code, _, err = run(
        capsys, stakeholder, "add", "--title", "x", "--date", "2026-06-01", "--product", "payments"
    )
    assert code == 2 and not ProcessChange.objects.exists()
    assert "permission" in err.lower() or "role" in err.lower() or "member" in err.lower(), err


# --- pages -----------------------------------------------------------------------------------------------


def test_pages_flow(member, product) -> None:
    c = member.client
    new = reverse("delivery:change_new", args=("alpha",))
    assert c.get(new).status_code == 200
    bad = c.post(new, {"title": "", "product_id": product.pk, "changed_on": "2026-06-01", "before_days": 42,
                       "after_days": 42})  # fmt: skip
    assert bad.status_code == 422 and not ProcessChange.objects.exists()
    made = c.post(new, {"title": "WIP limit 3", "product_id": product.pk, "changed_on": "2026-06-01",
                        "before_days": 42, "after_days": 42})  # fmt: skip
    change = ProcessChange.objects.get()
    assert made.status_code == 302 and made["Location"] == process.change_url(change)
    overview = c.get(reverse("delivery:overview", args=("alpha",)))
    assert reverse("delivery:changes", args=("alpha",)).encode() in overview.content
    listing = c.get(reverse("delivery:changes", args=("alpha",)), {"product": product.pk})
    assert b"WIP limit 3" in listing.content
    page = c.get(process.change_url(change))
    assert b"Not compared yet" in page.content
    assert reverse("hypotheses:hypothesis", args=("alpha", change.hypothesis_id)).encode() in page.content
    compared = c.post(reverse("delivery:change_compare", args=("alpha", change.pk)), follow=True)
    assert (
        b'data-testid="change-comparison"' in compared.content
        and b'data-verdict="better"' in compared.content
    )
    decided = c.post(
        reverse("delivery:change_decide", args=("alpha", change.pk)),
        {"decision": "persevere", "outcome": "", "learning": "Smaller batches.", "next_step": ""},
        follow=True,
    )
    assert b'data-testid="change-decision"' in decided.content
    assert Hypothesis.objects.get(process_changes=change).state == Hypothesis.State.CONCLUDED


def test_edit_form_unchanged_changes_nothing_and_a_stale_one_is_409(member, product) -> None:
    change = mark(member, product)
    edit = reverse("delivery:change_edit", args=("alpha", change.pk))
    form = {"title": change.title, "description": "", "team_id": "", "changed_on": "2026-06-01",
            "before_days": 42, "after_days": 42, "version": 1}  # fmt: skip
    before = HistoryEntry.objects.count()
    assert member.client.post(edit, form).status_code == 302
    assert ProcessChange.objects.get().version == 1 and HistoryEntry.objects.count() == before
    assert member.client.post(edit, {**form, "title": "Renamed"}).status_code == 302
    stale = member.client.post(edit, {**form, "title": "Stale"})
    assert stale.status_code == 409 and ProcessChange.objects.get().title == "Renamed"
    missing = member.client.post(edit, {k: v for k, v in form.items() if k != "version"})
    assert missing.status_code == 422


def test_pages_permissions_and_other_organisations(member, stakeholder, outsider, product) -> None:
    change = mark(member, product)
    assert stakeholder.client.get(reverse("delivery:change_new", args=("alpha",))).status_code == 403
    page = stakeholder.client.get(process.change_url(change))
    assert page.status_code == 200 and b"change-compare" not in page.content
    assert (
        stakeholder.client.post(reverse("delivery:change_compare", args=("alpha", change.pk))).status_code
        == 403
    )
    assert (
        stakeholder.client.post(
            reverse("delivery:change_new", args=("alpha",)),
            {
                "title": "x",
                "product_id": product.pk,
                "changed_on": "2026-06-01",
                "before_days": 42,
                "after_days": 42,
            },
        ).status_code
        == 403
    )
    assert ProcessChange.objects.count() == 1
    for name in ("change", "change_edit"):
        assert outsider.client.get(reverse(f"delivery:{name}", args=("alpha", change.pk))).status_code == 404
    theirs_url = reverse("delivery:change", args=("bravo-secret", change.pk))
    assert outsider.client.get(theirs_url).status_code == 404
    assert (
        member.client.post(
            reverse("delivery:change_delete", args=("alpha", change.pk)), {"version": 1}
        ).status_code
        == 302
    )
    assert (
        not ProcessChange.objects.exists()
        and Hypothesis.objects.filter(title__startswith="Process change").exists()
    )


def test_the_hypothesis_page_links_back_to_its_process_change(member, product) -> None:
    change = mark(member, product)
    other = process.create_change(
        member.membership, member.user, product_id=product.pk, title="Pairing", changed_on="2026-05-04"
    )
    url = f"/o/alpha/hypotheses/{change.hypothesis_id}/"
    page = member.client.get(url).content.decode()
    assert f'href="/o/alpha/delivery/changes/{change.pk}/"' in page and "process change" in page
    assert f"/delivery/changes/{other.pk}/" not in page
    plain = create_hypothesis(member.membership, member.user, product.pk, title="Not a process change")
    assert (
        'data-testid="hypothesis-process-change"'
        not in member.client.get(f"/o/alpha/hypotheses/{plain.pk}/").content.decode()
    )
