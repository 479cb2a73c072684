from __future__ import annotations

from django.urls import path

from truenorth.hypotheses import views

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
]
