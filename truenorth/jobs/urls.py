from __future__ import annotations

from django.urls import path

from truenorth.jobs import views

app_name = "jobs"

urlpatterns = [
    path("o/<slug:org_slug>/jobs/", views.job_list, name="list"),
    path("o/<slug:org_slug>/jobs/<id:job_id>/", views.job, name="job"),
]
