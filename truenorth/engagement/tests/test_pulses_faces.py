"""Alignment pulses through their faces: the pages, the answer page by link, the API and the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from truenorth import cli
from truenorth.accounts.models import User
from truenorth.engagement.models import OutgoingEmail, PulseInvitation, PulseResponse, PulseRound
from truenorth.engagement.services import pulse_answers as answers
from truenorth.engagement.services import pulses as svc
from truenorth.engagement.services import throttle
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Membership, Role
from truenorth.strategy import services as strategy

GOAL = "Cut the time a new customer needs to get value from the product to under one day."
ANSWER = {
    "own_words": "New customers get value within a day",
    "clarity": "4",
    "commitment": "5",
    "contribution": "I build the onboarding flow",
    "group": "",
}


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


@pytest.fixture(autouse=True)
def _fresh_throttle():
    throttle.reset("pulse-link", "127.0.0.1")
    yield
    throttle.reset("pulse-link", "127.0.0.1")


@pytest.fixture
def product(owner):
    return strategy.create_product(owner.membership, owner.user, name="Checkout", product_goal=GOAL)


@pytest.fixture
def pulse(owner, product):
    return svc.create_pulse(owner.membership, owner.user, product_id=product.pk, title="Checkout pulse")


@pytest.fixture
def crowd(org_a) -> list[User]:
    users = []
    for i in range(6):
        user = User.objects.create_user(email=f"person{i}@a.example", password="x" * 12, name=f"P{i}")
        Membership.objects.create(organisation=org_a, user=user, role=Role.MEMBER)
        users.append(user)
    return users


def link(raw: str) -> str:
    return reverse("engagement:pulse-answer", args=[raw])


# --- pages ------------------------------------------------------------------------------------------


def test_list_create_and_page(owner, product) -> None:
    url = reverse("engagement:pulses", args=["alpha"])
    assert owner.client.get(url).status_code == 200
    response = owner.client.post(
        url,
        {
            "title": "Quarterly pulse",
            "product": str(product.pk),
            "cadence_days": "90",
            "open_days": "7",
            "active": "on",
            "all_members": "on",
            "include_stakeholders": "on",
            "min_group_size": "5",
        },
    )
    assert response.status_code == 302
    pulse = svc.pulses_of(owner.membership).get()
    assert pulse.cadence_days == 90 and pulse.created_by == owner.user
    page = owner.client.get(response["Location"])
    assert page.status_code == 200 and b"Quarterly pulse" in page.content


def test_create_form_shows_service_errors(owner, product) -> None:
    response = owner.client.post(
        reverse("engagement:pulses", args=["alpha"]),
        {
            "title": "P",
            "product": str(product.pk),
            "cadence_days": "7",
            "open_days": "9",
            "min_group_size": "5",
        },
    )
    assert response.status_code == 200
    assert "open days at most the cadence" in response.content.decode()


def test_stakeholder_role_reads_but_cannot_write(stakeholder, pulse) -> None:
    assert stakeholder.client.get(reverse("engagement:pulse", args=["alpha", pulse.pk])).status_code == 200
    assert (
        stakeholder.client.get(reverse("engagement:pulse-edit", args=["alpha", pulse.pk])).status_code == 403
    )
    response = stakeholder.client.post(reverse("engagement:pulse-open", args=["alpha", pulse.pk]))
    assert response.status_code == 403
    assert not PulseRound.objects.exists()


def test_other_organisation_gets_404(outsider, pulse) -> None:
    assert outsider.client.get(reverse("engagement:pulse", args=["alpha", pulse.pk])).status_code == 404
    assert (
        outsider.client.get(reverse("engagement:pulse", args=["bravo-secret", pulse.pk])).status_code == 404
    )


def test_edit_unchanged_writes_nothing(owner, pulse) -> None:
    url = reverse("engagement:pulse-edit", args=["alpha", pulse.pk])
    form = owner.client.get(url).context["form"]
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, list):
            data[name] = value
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = field.widget.format_value(value) if hasattr(field.widget, "format_value") else value
    response = owner.client.post(url, data)
    assert response.status_code == 302
    pulse.refresh_from_db()
    assert pulse.version == 1


def test_open_round_button_runs_the_job_and_sends_mail(owner, pulse, crowd) -> None:
    response = owner.client.post(reverse("engagement:pulse-open", args=["alpha", pulse.pk]))
    assert response.status_code == 302 and "/jobs/" in response["Location"]
    rnd = PulseRound.objects.get(pulse=pulse)
    opened = HistoryEntry.objects.get(object_type="engagement.pulseround", object_id=str(rnd.pk))
    assert opened.actor == owner.user  # who opened the round is in the history
    invited = PulseInvitation.objects.filter(round=rnd).count()
    assert invited >= len(crowd)
    emails = OutgoingEmail.objects.filter(kind="pulse")
    assert emails.count() == invited
    body = emails.order_by("id")[0].text
    assert "/pulse/" in body
    # The raw token is only in the e-mail: its hash is what the database keeps.
    raw = body.split("/pulse/")[1].split("/")[0]
    assert PulseInvitation.objects.filter(token_hash=svc.token_hash(raw)).exists()
    assert not PulseInvitation.objects.filter(token_hash=raw).exists()
    # A second click while the round is open is refused with a message, no second round.
    again = owner.client.post(reverse("engagement:pulse-open", args=["alpha", pulse.pk]), follow=True)
    assert "still open" in again.content.decode()
    assert PulseRound.objects.filter(pulse=pulse).count() == 1
    del mail.outbox[:]


def test_in_app_answer_once(member, pulse) -> None:
    rnd, _ = svc.open_round(pulse, send=False)
    url = reverse("engagement:pulse-round-answer", args=["alpha", pulse.pk, rnd.pk])
    assert member.client.get(url).status_code == 200
    assert member.client.post(url, ANSWER).status_code == 302
    again = member.client.get(url)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    assert PulseResponse.objects.count() == 1


# --- the answer page by link ------------------------------------------------------------------------


def test_answer_by_link_without_account(client, pulse) -> None:
    _, invitations = svc.open_round(pulse, send=False)
    raw = invitations[0][1]
    page = client.get(link(raw))
    assert page.status_code == 200 and GOAL not in page.content.decode()  # the statement is not given away
    assert page["Cache-Control"] == "no-store" and page["Referrer-Policy"] == "same-origin"
    done = client.post(link(raw), ANSWER)
    assert done.status_code == 200 and b"Thank you" in done.content
    assert PulseResponse.objects.count() == 1
    used = client.post(link(raw), ANSWER)
    assert used.status_code == 410 and "already been used" in used.content.decode()
    assert PulseResponse.objects.count() == 1


def test_bad_answer_shows_errors_and_keeps_the_link(client, pulse) -> None:
    _, invitations = svc.open_round(pulse, send=False)
    raw = invitations[0][1]
    response = client.post(link(raw), {**ANSWER, "own_words": "", "clarity": "9"})
    assert response.status_code == 200
    assert response.context["form"].errors.keys() >= {"own_words", "clarity"}
    assert client.post(link(raw), ANSWER).status_code == 200
    assert PulseResponse.objects.count() == 1


def test_unknown_and_expired_links(client, owner, pulse) -> None:
    unknown = client.get(link("x" * 43))
    assert unknown.status_code == 404 and "not valid" in unknown.content.decode()
    rnd, invitations = svc.open_round(pulse, send=False)
    svc.close_round(owner.membership, owner.user, rnd.pk)
    expired = client.post(link(invitations[0][1]), ANSWER)
    assert expired.status_code == 410 and "closed" in expired.content.decode()
    assert not PulseResponse.objects.exists()


def test_answer_links_are_rate_limited_per_address(client, db) -> None:
    for _ in range(answers.LINK_RATE_LIMIT):
        assert client.get(link("nope")).status_code == 404
    limited = client.get(link("nope"))
    assert limited.status_code == 429
    other = client.get(link("nope"), REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 404
    throttle.reset("pulse-link", "10.9.9.9")


# --- API --------------------------------------------------------------------------------------------


def api(path: str) -> str:
    return f"/api/v1/orgs/alpha{path}"


def test_divergent_answers_are_the_furthest_below_the_scale_lowest_first(owner, pulse, crowd) -> None:
    rnd, invitations = svc.open_round(pulse, send=False)
    now = timezone.now()
    words = [
        "New customers get value within a day",
        "Rewrite the billing system in Rust",
        "New customers get value within a day",
        "Value for customers",
        "New customers get value within a day",
    ]
    for (_, raw), text in zip(invitations, words, strict=False):
        answers.submit_answer(raw, {**ANSWER, "own_words": text}, now=now)
    result = owner.api().get(api(f"/pulses/{pulse.pk}/rounds/{rnd.pk}/results")).json()
    divergent = result["divergent"]
    assert [d["own_words"] for d in divergent] == [
        "Rewrite the billing system in Rust",
        "Value for customers",
    ]
    assert divergent[0]["similarity"] < divergent[1]["similarity"] < 0.5


def test_api_crud_and_errors(owner, member, stakeholder, outsider, product) -> None:
    client = owner.api()
    created = client.post(
        api("/pulses"),
        {"title": "API pulse", "product": product.pk, "cadence_days": 30},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["min_group_size"] == 5 and body["version"] == 1
    pid = body["id"]
    bad = client.post(api("/pulses"), {"title": "", "product": product.pk}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "title"
    unknown_field = client.post(
        api("/pulses"),
        {"title": "x", "product": product.pk, "colour": "red"},
        content_type="application/json",
    )
    assert unknown_field.status_code == 422
    small = client.post(
        api("/pulses"),
        {"title": "x", "product": product.pk, "min_group_size": 2},
        content_type="application/json",
    )
    assert small.status_code == 422 and small.json()["errors"][0]["field"] == "min_group_size"
    patched = client.patch(
        api(f"/pulses/{pid}"), {"version": 1, "title": "Renamed"}, content_type="application/json"
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    stale = client.patch(
        api(f"/pulses/{pid}"), {"version": 1, "title": "Again"}, content_type="application/json"
    )
    assert stale.status_code == 409
    denied = stakeholder.api().patch(
        api(f"/pulses/{pid}"), {"version": 2, "title": "S"}, content_type="application/json"
    )
    assert denied.status_code == 403
    assert outsider.api().get(api(f"/pulses/{pid}")).status_code == 404
    assert outsider.api().get(f"/api/v1/orgs/bravo-secret/pulses/{pid}").status_code == 404
    assert client.get(api("/pulses")).json()[0]["title"] == "Renamed"
    assert client.delete(api(f"/pulses/{pid}?version=1")).status_code == 409
    assert client.delete(api(f"/pulses/{pid}?version=2")).status_code == 204
    assert client.get(api(f"/pulses/{pid}")).status_code == 404


def test_api_open_round_is_a_job_then_results(owner, pulse, crowd) -> None:
    client = owner.api()
    opened = client.post(api(f"/pulses/{pulse.pk}/rounds"))
    assert opened.status_code == 202, opened.content
    assert opened["Location"]
    assert opened.json()["status"] == "succeeded"
    again = client.post(api(f"/pulses/{pulse.pk}/rounds"))
    assert again.status_code == 409
    rounds = client.get(api(f"/pulses/{pulse.pk}/rounds")).json()
    assert rounds[0]["number"] == 1 and rounds[0]["open"] and rounds[0]["invited"] >= len(crowd)
    rid = rounds[0]["id"]
    hidden = client.get(api(f"/pulses/{pulse.pk}/rounds/{rid}/results")).json()
    assert (
        hidden["hidden"]
        and hidden["index"] is None
        and hidden["hidden_reason"] == "hidden: fewer than 5 answers"
    )
    now = timezone.now()
    for invitation in PulseInvitation.objects.filter(round_id=rid)[:5]:
        # answer as the link would, with tokens of our own (the e-mailed ones are not kept)
        raw = f"test-token-{invitation.pk}"
        PulseInvitation.objects.filter(pk=invitation.pk).update(token_hash=svc.token_hash(raw))
        answers.submit_answer(raw, {**ANSWER, "clarity": 5}, now=now)
    shown = client.get(api(f"/pulses/{pulse.pk}/rounds/{rid}/results")).json()
    assert not shown["hidden"] and shown["index"] is not None and shown["responses"] == 5
    assert shown["clarity_distribution"]["counts"] == [0, 0, 0, 0, 5]
    assert shown["groups"] == [
        {
            "name": "No group given",
            "responses": 5,
            "hidden": False,
            "clarity": {"counts": [0, 0, 0, 0, 5], "mean": 5.0},
            "commitment": {"counts": [0, 0, 0, 0, 5], "mean": 5.0},
            "index": shown["index"],
        }
    ]
    assert shown["divergent"] == []  # every answer is close to the statement (at or above the 0.5 scale)
    trend = client.get(api(f"/pulses/{pulse.pk}/trend")).json()
    assert trend[0]["index"] == shown["index"]
    # Another pulse's id with this round: not found.
    other = svc.create_pulse(owner.membership, owner.user, product_id=pulse.product_id, title="Other")
    assert client.get(api(f"/pulses/{other.pk}/rounds/{rid}/results")).status_code == 404
    closed = client.post(api(f"/pulses/{pulse.pk}/rounds/{rid}/close"))
    assert closed.status_code == 200 and not closed.json()["open"]
    assert client.post(api(f"/pulses/{pulse.pk}/rounds/{rid}/close")).status_code == 409


def test_group_breakdown_hides_small_groups(owner, org_a, pulse, crowd) -> None:
    strategy.create_team(owner.membership, owner.user, "Payments")
    strategy.create_team(owner.membership, owner.user, "Search")
    rnd, invitations = svc.open_round(pulse, send=False)
    now = timezone.now()
    for i, (_, raw) in enumerate(invitations[:7]):
        group = "Payments" if i < 5 else "Search"
        words = "Rewrite everything in Rust" if i == 6 else "New customers get value within a day"
        answers.submit_answer(raw, {**ANSWER, "group": group, "own_words": words}, now=now)
    result = owner.api().get(api(f"/pulses/{pulse.pk}/rounds/{rnd.pk}/results")).json()
    groups = {g["name"]: g for g in result["groups"]}
    assert not groups["Payments"]["hidden"] and groups["Payments"]["clarity"]["counts"][3] == 5
    assert groups["Search"] == {
        "name": "Search",
        "responses": 2,
        "hidden": True,
        "clarity": None,
        "commitment": None,
        "index": None,
    }
    # The Search group's answers (the divergent Rust one among them) are never shown.
    assert all("Rust" not in d["own_words"] for d in result["divergent"])
    assert result["divergent"] == []
    page = owner.client.get(reverse("engagement:pulse", args=["alpha", pulse.pk])).content.decode()
    assert "hidden: fewer than 5 answers" in page and "Rust" not in page


# --- CLI --------------------------------------------------------------------------------------------


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_send_list_results(capsys, owner, pulse, crowd) -> None:
    who = ["--org", "alpha", "--as", owner.user.email]
    code, out, err = _run(capsys, "pulse", "send", "--json", *who)
    assert code == 0, err
    sent = json.loads(out)
    assert sent[0]["pulse"] == pulse.pk and sent[0]["round"] == 1 and sent[0]["invited"] >= len(crowd)
    code, out, _ = _run(capsys, "pulse", "send", "--json", *who)
    assert code == 0 and json.loads(out) == []  # nothing due any more (a one-off pulse)
    code, out, _ = _run(capsys, "pulse", "list", "--json", *who)
    assert code == 0 and json.loads(out)[0]["rounds"] == 1
    code, out, _ = _run(capsys, "pulse", "results", str(pulse.pk), *who)
    assert code == 0 and "hidden: fewer than 5 answers" in out
    code, out, _ = _run(capsys, "pulse", "results", str(pulse.pk), "--json", *who)
    assert code == 0 and json.loads(out)["hidden"] is True


def test_cli_errors_are_one_line(capsys, owner, stakeholder, pulse) -> None:
    code, _, err = _run(capsys, "pulse", "results", "999999", "--org", "alpha", "--as", owner.user.email)
    assert code == 2 and err.count("\n") == 1 and "No such pulse" in err
    code, _, err = _run(capsys, "pulse", "results", str(pulse.pk), "--org", "alpha", "--as", owner.user.email)
    assert code == 2 and "no round yet" in err
    code, _, err = _run(capsys, "pulse", "send", "--org", "alpha", "--as", stakeholder.user.email)
    assert code == 2 and err.startswith("error: ")
    code, _, err = _run(capsys, "pulse", "list", "--org", "bravo-secret", "--as", owner.user.email)
    assert code == 2 and "No organisation" in err
    svc.open_round(pulse, send=False)
    code, _, err = _run(
        capsys, "pulse", "send", "--pulse", str(pulse.pk), "--org", "alpha", "--as", owner.user.email
    )
    assert code == 2 and "still open" in err


def test_periodic_task_opens_and_closes(owner, product) -> None:
    from truenorth.engagement.jobs.pulses import open_and_close_pulse_rounds

    past = timezone.now() - dt.timedelta(days=20)
    pulse = svc.create_pulse(
        owner.membership,
        owner.user,
        product_id=product.pk,
        title="Due",
        cadence_days=7,
        open_days=3,
        now=past,
    )
    svc.open_round(pulse, now=past, send=False)  # its round ran out long ago
    outcome = open_and_close_pulse_rounds.call_local()
    assert outcome == {"closed": 1, "opened": 1}
    assert PulseRound.objects.filter(pulse=pulse, closed_at__isnull=False).count() == 1
