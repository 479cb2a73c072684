from __future__ import annotations

from django.urls import URLPattern

from truenorth.delivery.views import metrics, sources

app_name = "delivery"

urlpatterns: list[URLPattern] = [*sources.urlpatterns, *metrics.urlpatterns]
