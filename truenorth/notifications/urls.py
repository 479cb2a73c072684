from __future__ import annotations

from django.urls import path

from truenorth.notifications import views

app_name = "notifications"

urlpatterns = [
    path("o/<slug:org_slug>/notifications/", views.notifications, name="notifications"),
    path("o/<slug:org_slug>/notifications/read/", views.mark_read, name="mark_read"),
]
