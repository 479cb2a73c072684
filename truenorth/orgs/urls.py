from __future__ import annotations

from django.urls import path

from truenorth.orgs import views

app_name = "orgs"

urlpatterns = [
    path("orgs/new/", views.create, name="create"),
    path("invite/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("o/<slug:org_slug>/members/", views.members, name="members"),
    path("o/<slug:org_slug>/members/<id:member_id>/role/", views.change_role, name="change_role"),
    path("o/<slug:org_slug>/members/<id:member_id>/remove/", views.remove_member, name="remove_member"),
    path(
        "o/<slug:org_slug>/invitations/<id:invitation_id>/revoke/",
        views.revoke_invitation,
        name="revoke_invitation",
    ),
    path("o/<slug:org_slug>/settings/", views.org_settings, name="settings"),
]
