from __future__ import annotations

from django.urls import path

from truenorth.home import views

app_name = "home"

urlpatterns = [
    path("", views.home, name="home"),
    path("o/<slug:org_slug>/", views.dashboard, name="dashboard"),
]
