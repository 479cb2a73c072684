from __future__ import annotations

from django.urls import path

from truenorth.search import views

app_name = "search"

urlpatterns = [
    path("o/<slug:org_slug>/search/", views.search, name="search"),
]
