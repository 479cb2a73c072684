from __future__ import annotations

from django.urls import URLPattern

from truenorth.engagement.views import (
    activity,
    briefs,
    health,
    mail,
    overview,
    pulses,
    stakeholders,
    webhooks,
)

app_name = "engagement"

urlpatterns: list[URLPattern] = [
    *overview.urlpatterns,
    *stakeholders.urlpatterns,
    *pulses.urlpatterns,
    *briefs.urlpatterns,
    *mail.urlpatterns,
    *webhooks.urlpatterns,
    *activity.urlpatterns,
    *health.urlpatterns,
]
