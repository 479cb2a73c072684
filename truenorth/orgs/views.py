from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.core.errors import DomainError, NotFound
from truenorth.core.forms import require_version
from truenorth.history.services import entries_for
from truenorth.htmx import is_htmx
from truenorth.orgs import services
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.forms import InviteForm, OrganisationForm, OrganisationSettingsForm, RoleForm
from truenorth.orgs.models import ROLE_HELP, Membership, Role


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.create_organisation(
                current_user(request), form.cleaned_data["name"], form.cleaned_data["slug"] or None
            )
        except DomainError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"{org.name} is ready. Invite the people who shape its goals.")
            return redirect("home:dashboard", org_slug=org.slug)
    return render(request, "orgs/create.html", {"form": form})


@org_view
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        services.require_role(membership, Role.ADMIN)
    form = InviteForm(request.POST or None)
    link: str | None = None
    if request.method == "POST" and form.is_valid():
        try:
            _, link = services.invite(
                membership, current_user(request), form.cleaned_data["email"], form.cleaned_data["role"]
            )
        except DomainError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            form = InviteForm()
    invitations = services.invitations_of(membership) if membership.can_admin else []
    return render(
        request,
        "orgs/members.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "members": services.members_of(membership),
            "invitations": invitations,
            "form": form,
            "invite_link": link,
            "roles": Role.choices,
            "role_help": ROLE_HELP,
        },
    )


@org_view
@require_POST
def change_role(request: HttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    """Change a member's role; htmx requests get the updated table row back, others a redirect."""
    form = RoleForm(request.POST)
    ok, text = False, "Choose a valid role."
    if form.is_valid():
        try:
            target = services.change_role(
                membership, current_user(request), member_id, form.cleaned_data["role"]
            )
        except NotFound:
            raise
        except DomainError as exc:
            text = exc.message
        else:
            ok, text = True, f"{target.user.display_name} is now {target.get_role_display().lower()}."
    if is_htmx(request):
        row = services.get_member(membership, member_id)
        context = {
            "m": row,
            "membership": membership,
            "org": membership.organisation,
            "roles": Role.choices,
            "row_message": text,
            "row_message_class": "field-ok" if ok else "field-error",
        }
        return render(request, "orgs/_member_row.html", context, status=200)
    (messages.success if ok else messages.error)(request, text)
    return redirect("orgs:members", org_slug=membership.organisation.slug)


@org_view
@require_POST
def remove_member(request: HttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    leaving = services.get_member(membership, member_id).user_id == current_user(request).pk
    try:
        services.remove_member(membership, current_user(request), member_id)
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("orgs:members", org_slug=membership.organisation.slug)
    if leaving:
        messages.success(request, f"You left {membership.organisation.name}.")
        return redirect("home:home")
    messages.success(request, "Member removed.")
    return redirect("orgs:members", org_slug=membership.organisation.slug)


@org_view
@require_POST
def revoke_invitation(request: HttpRequest, membership: Membership, invitation_id: int) -> HttpResponse:
    try:
        services.revoke_invitation(membership, current_user(request), invitation_id)
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Invitation revoked.")
    return redirect("orgs:members", org_slug=membership.organisation.slug)


@org_view
@require_http_methods(["GET", "POST"])
def org_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        services.require_role(membership, Role.ADMIN)
    org = membership.organisation
    initial = {
        "name": org.name,
        "slug": org.slug,
        "require_two_factor": org.require_two_factor,
        "version": org.version,
    }
    form = OrganisationSettingsForm(request.POST or None, initial=initial)
    require_version(form)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.update_organisation(
                membership,
                current_user(request),
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"] or org.slug,
                require_two_factor=form.cleaned_data["require_two_factor"],
                version=form.cleaned_data["version"],
            )
        except NotFound:
            raise
        except DomainError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("orgs:settings", org_slug=org.slug)
    history = entries_for(org).select_related(None)[:50]
    return render(
        request,
        "orgs/settings.html",
        {"membership": membership, "org": org, "form": form, "history": history},
    )


@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = services.pending_invitation(token)
    except NotFound as exc:
        return render(request, "orgs/invitation_invalid.html", {"message": exc.message}, status=404)
    if not request.user.is_authenticated:
        return render(request, "orgs/invitation.html", {"invitation": invitation, "next": request.path})
    if request.method == "POST":
        membership = services.accept_invitation(current_user(request), token)
        messages.success(request, f"You joined {membership.organisation.name} as {membership.role}.")
        return redirect("home:dashboard", org_slug=membership.organisation.slug)
    return render(request, "orgs/invitation.html", {"invitation": invitation, "next": request.path})
