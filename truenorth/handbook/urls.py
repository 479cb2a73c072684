"""One route per known page (no page name comes from the address, so nothing else can be read)."""

from __future__ import annotations

from django.urls import path

from truenorth.handbook import pages, views

app_name = "handbook"

urlpatterns = [
    path("docs/", views.index, name="index"),
    *(path(f"docs/{name}/", views.page, {"page": name}, name=name) for name in pages.PAGES),
]
