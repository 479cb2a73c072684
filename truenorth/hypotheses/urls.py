from __future__ import annotations

from django.urls import path

from truenorth.hypotheses.views import hypotheses as views
from truenorth.hypotheses.views import results as views_results
from truenorth.hypotheses.views.planning import plan as plan_view

app_name = "hypotheses"

ORG = "o/<slug:org_slug>/"
PRODUCT = ORG + "products/<id:product_id>/"
HYPOTHESIS = ORG + "hypotheses/<id:hypothesis_id>/"

urlpatterns = [
    path(PRODUCT + "hypotheses/", views.board, name="board"),
    path(PRODUCT + "hypotheses/new/", views.create, name="create"),
    path(PRODUCT + "hypotheses/rank/", views.rank, name="rank"),
    path(PRODUCT + "learnings/", views.learning_log, name="learnings"),
    path(HYPOTHESIS, views.hypothesis, name="hypothesis"),
    path(HYPOTHESIS + "edit/", views.edit, name="edit"),
    path(HYPOTHESIS + "move/", views.move, name="move"),
    path(HYPOTHESIS + "conclude/", views.conclude, name="conclude"),
    path(HYPOTHESIS + "experiments/new/", views.experiment_create, name="experiment_create"),
    path(ORG + "experiments/<id:experiment_id>/edit/", views.experiment_edit, name="experiment_edit"),
    path(ORG + "experiments/<id:experiment_id>/plan/", plan_view, name="plan"),
    path(ORG + "experiments/<id:experiment_id>/results/", views_results.results_page, name="results"),
    path(
        ORG + "experiments/<id:experiment_id>/results/evidence/",
        views_results.evidence_settings,
        name="evidence_settings",
    ),
    path(
        ORG + "experiments/<id:experiment_id>/results/<id:snapshot_id>/",
        views_results.result_snapshot,
        name="result_snapshot",
    ),
]
