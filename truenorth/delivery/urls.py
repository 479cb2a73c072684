from __future__ import annotations

from django.urls import URLPattern

from truenorth.delivery.views import github, metrics, process, sources

app_name = "delivery"

urlpatterns: list[URLPattern] = [
    *sources.urlpatterns,
    *metrics.urlpatterns,
    *github.urlpatterns,
    *process.urlpatterns,
]
