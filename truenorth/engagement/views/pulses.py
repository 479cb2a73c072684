"""Engagement pages: alignment pulses (list and create, a pulse's rounds and results, edit, open a round
now as a job, close a round, answer signed in) and the answer page reached by a one-time link without
an account (/pulse/<token>/: no login, rate-limited per address)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.accounts.services import client_ip
from truenorth.core.errors import Conflict, DomainError, NotFound, TooManyRequests, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, posted_version, require_version
from truenorth.engagement import pulse_charts
from truenorth.engagement.jobs.pulses import submit_open_round
from truenorth.engagement.models import Pulse, PulseInvitation
from truenorth.engagement.services import pulse_answers as answers
from truenorth.engagement.services import pulse_results as results
from truenorth.engagement.services import pulses as services
from truenorth.history.services import entries_for
from truenorth.orgs import pagecache
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.orgs.services import members_of, require_writer
from truenorth.strategy.services import products_of

from .pulse_forms import AnswerForm, PulseForm


def _pulse_url(membership: Membership, pulse_id: int) -> str:
    return reverse("engagement:pulse", args=(membership.organisation.slug, pulse_id))


def _form(membership: Membership, data: Any = None, initial: dict[str, Any] | None = None) -> PulseForm:
    products = [(str(p.pk), p.name) for p in products_of(membership)]
    people = [(str(m.user_id), f"{m.user.display_name} <{m.user.email}>") for m in members_of(membership)]
    return PulseForm(data, initial=initial, products=products, members=people)


def _values(form: PulseForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "title": data["title"],
        "product_id": data["product"],
        "cadence_days": data["cadence_days"],
        "open_days": data["open_days"],
        "next_run_at": data["next_run_at"],
        "active": data["active"],
        "all_members": data["all_members"],
        "member_ids": [int(u) for u in data["members"]],
        "include_stakeholders": data["include_stakeholders"],
        "min_group_size": data["min_group_size"],
    }


def _form_error(form: Any, exc: DomainError) -> None:
    if isinstance(exc, ValidationFailed) and len(exc.errors) > 1:
        for field, message in exc.errors.items():
            form.add_error(field if field in form.fields else None, message)
    else:
        apply_error(form, exc)


@org_view
@require_http_methods(["GET", "POST"])
def pulse_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        require_writer(membership)
    form = _form(membership, request.POST or None, initial={"min_group_size": services.default_min_group()})
    if request.method == "POST" and form.is_valid():
        try:
            pulse = services.create_pulse(membership, current_user(request), **_values(form))
        except (ValidationFailed, Conflict) as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"“{pulse.title}” is scheduled; its first round opens within minutes.")
            return redirect(_pulse_url(membership, pulse.pk))
    rows = []
    for pulse in services.pulses_of(membership):
        latest = pulse.rounds.order_by("-number").first()
        rows.append((pulse, latest, latest is not None and services.is_open(latest)))
    return render(
        request,
        "engagement/pulses/pulses.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "rows": rows,
            "form": form,
            "to_answer": answers.open_rounds_for(membership),
        },
    )


@org_view
@require_GET
def pulse_page(request: HttpRequest, membership: Membership, pulse_id: int) -> HttpResponse:
    pulse = services.get_pulse(membership, pulse_id)
    rounds = list(services.rounds_of(membership, pulse_id))
    chosen = request.GET.get("round")
    result = None
    if rounds:
        rnd = next((r for r in rounds if str(r.number) == chosen), rounds[-1])
        result = results.round_results(membership, rnd.pk)
    trend = results.trend(membership, pulse_id)
    spec = pulse_charts.trend_spec(
        pulse_charts.Point(t.number, t.opened_at, t.index, t.clarity, t.commitment, t.response_rate)  # type: ignore[arg-type]
        for t in trend
    )
    return render(
        request,
        "engagement/pulses/pulse.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "pulse": pulse,
            "rounds": rounds,
            "result": result,
            "trend": trend,
            "spec": spec,
            "members": list(pulse.members.all()),
            "history": entries_for(membership.organisation, pulse)[:10],
            "method": services.similarity_method(),
            "scale": services.similarity_scale(),
            "now": timezone.now(),
        },
    )


@org_view
@require_http_methods(["GET", "POST"])
def pulse_edit(request: HttpRequest, membership: Membership, pulse_id: int) -> HttpResponse:
    require_writer(membership)
    pulse = services.get_pulse(membership, pulse_id)
    initial = {
        "title": pulse.title,
        "product": str(pulse.product_id),
        "cadence_days": pulse.cadence_days,
        "open_days": pulse.open_days,
        "next_run_at": pulse.next_run_at,
        "active": pulse.active,
        "all_members": pulse.all_members,
        "members": [str(u.pk) for u in pulse.members.all()],
        "include_stakeholders": pulse.include_stakeholders,
        "min_group_size": pulse.min_group_size,
        "version": pulse.version,
    }
    form = _form(membership, request.POST or None, initial=initial)
    require_version(form)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_pulse(
                membership,
                current_user(request),
                pulse_id,
                version=form.cleaned_data["version"],
                **_values(form),
            )
        except (ValidationFailed, Conflict) as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Pulse saved.")
            return redirect(_pulse_url(membership, pulse_id))
    return render(
        request,
        "engagement/pulses/pulse_edit.html",
        {"membership": membership, "org": membership.organisation, "pulse": pulse, "form": form},
    )


@org_view
@require_POST
def pulse_delete(request: HttpRequest, membership: Membership, pulse_id: int) -> HttpResponse:
    require_writer(membership)
    pulse = services.get_pulse(membership, pulse_id)
    version = posted_version(request.POST)
    try:
        if version is None:
            raise Conflict(MISSING_VERSION, field="version")
        services.delete_pulse(membership, current_user(request), pulse_id, version=version)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect(_pulse_url(membership, pulse_id))
    messages.success(request, f"“{pulse.title}” and its answers are deleted.")
    return redirect("engagement:pulses", org_slug=membership.organisation.slug)


@org_view
@require_POST
def pulse_open(request: HttpRequest, membership: Membership, pulse_id: int) -> HttpResponse:
    try:
        job = submit_open_round(membership, current_user(request), pulse_id)
    except (Conflict, ValidationFailed, TooManyRequests) as exc:
        messages.error(request, exc.message)
        return redirect(_pulse_url(membership, pulse_id))
    return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))


@org_view
@require_POST
def round_close(request: HttpRequest, membership: Membership, pulse_id: int, round_id: int) -> HttpResponse:
    rnd = services.get_round(membership, round_id, pulse_id)
    try:
        services.close_round(membership, current_user(request), round_id, pulse_id=pulse_id)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Round {rnd.number} is closed; its unused links no longer work.")
    return redirect(_pulse_url(membership, rnd.pulse_id))


def _answer_form(pulse: Pulse, invitation: PulseInvitation, data: Any = None) -> AnswerForm:
    goals = [(str(g.pk), g.title) for g in answers.goal_choices(pulse)]
    return AnswerForm(
        data,
        initial={"group": answers.default_group(invitation)},
        goals=goals,
        groups=answers.group_choices(pulse.organisation_id),
    )


@org_view
@require_http_methods(["GET", "POST"])
def round_answer(request: HttpRequest, membership: Membership, pulse_id: int, round_id: int) -> HttpResponse:
    """A signed-in member answers an open round (at most once)."""
    rnd = services.get_round(membership, round_id, pulse_id)
    context: dict[str, Any] = {"membership": membership, "org": membership.organisation, "round": rnd}
    try:
        invitation = answers.in_app_invitation(membership, round_id, pulse_id=pulse_id)
        answers.usable(invitation)
    except answers.LinkGone as exc:
        context["gone"] = exc.message
        return render(request, "engagement/pulses/answer_in_app.html", context, status=410)
    form = _answer_form(rnd.pulse, invitation, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            answers.submit_in_app(membership, round_id, form.values())
        except ValidationFailed as exc:
            _form_error(form, exc)
        except answers.LinkGone as exc:
            context["gone"] = exc.message
            return render(request, "engagement/pulses/answer_in_app.html", context, status=410)
        else:
            messages.success(request, "Thank you: your answer is in (anonymously).")
            return redirect("engagement:pulses", org_slug=membership.organisation.slug)
    context["form"] = form
    return render(request, "engagement/pulses/answer_in_app.html", context)


# --- the answer page reached by link, without an account ---------------------------------------------


def _public(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, f"engagement/pulses/{template}", context, status=status)
    response["Cache-Control"] = "no-store"
    # The token never leaves this site in a Referer ("no-referrer" would send Origin: null: CSRF fails).
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_http_methods(["GET", "POST"])
def answer_by_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        answers.throttle_link(client_ip(request))
    except TooManyRequests as exc:
        return _public(
            request, "link_problem.html", {"title": "Too many attempts", "message": exc.message}, 429
        )
    try:
        invitation = answers.invitation_for(token)
    except NotFound:
        return _public(
            request, "link_problem.html", {"title": "This link does not work", "unknown": True}, 404
        )
    except answers.LinkGone as exc:
        return _public(
            request,
            "link_problem.html",
            {"title": "This link can no longer be used", "message": exc.message},
            410,
        )
    rnd = invitation.round
    pulse = rnd.pulse
    pagecache.scope_request(request, pulse.organisation_id)
    form = _answer_form(pulse, invitation, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            answers.submit_answer(token, form.values())
        except ValidationFailed as exc:
            _form_error(form, exc)
        except NotFound:
            raise Http404 from None
        except answers.LinkGone as exc:
            return _public(
                request,
                "link_problem.html",
                {"title": "This link can no longer be used", "message": exc.message},
                410,
            )
        else:
            return _public(request, "thanks.html", {"pulse": pulse, "org_name": pulse.organisation.name})
    return _public(
        request,
        "answer.html",
        {"form": form, "round": rnd, "pulse": pulse, "org_name": pulse.organisation.name},
    )


urlpatterns: list[URLPattern] = [
    path("o/<slug:org_slug>/engagement/pulses/", pulse_list, name="pulses"),
    path("o/<slug:org_slug>/engagement/pulses/<id:pulse_id>/", pulse_page, name="pulse"),
    path("o/<slug:org_slug>/engagement/pulses/<id:pulse_id>/edit/", pulse_edit, name="pulse-edit"),
    path("o/<slug:org_slug>/engagement/pulses/<id:pulse_id>/delete/", pulse_delete, name="pulse-delete"),
    path("o/<slug:org_slug>/engagement/pulses/<id:pulse_id>/open/", pulse_open, name="pulse-open"),
    path(
        "o/<slug:org_slug>/engagement/pulses/<id:pulse_id>/rounds/<id:round_id>/close/",
        round_close,
        name="pulse-round-close",
    ),
    path(
        "o/<slug:org_slug>/engagement/pulses/<id:pulse_id>/rounds/<id:round_id>/answer/",
        round_answer,
        name="pulse-round-answer",
    ),
    path("pulse/<str:token>/", answer_by_link, name="pulse-answer"),
]
