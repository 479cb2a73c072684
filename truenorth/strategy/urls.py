from __future__ import annotations

from django.urls import path

from truenorth.strategy import views

app_name = "strategy"

ORG = "o/<slug:org_slug>/"
PRODUCT = ORG + "products/<id:product_id>/"
GOAL = ORG + "goals/<id:goal_id>/"

urlpatterns = [
    path(ORG + "products/", views.products, name="products"),
    path(ORG + "teams/", views.create_team, name="create_team"),
    path(PRODUCT, views.product, name="product"),
    path(PRODUCT + "edit/", views.product_edit, name="product_edit"),
    path(PRODUCT + "archive/", views.product_archive, name="product_archive"),
    path(PRODUCT + "work/", views.work_item_create, name="work_item_create"),
    path(PRODUCT + "goals/new/", views.goal_create, name="goal_create"),
    path(GOAL, views.goal, name="goal"),
    path(GOAL + "children/", views.goal_children, name="goal_children"),
    path(GOAL + "edit/", views.goal_edit, name="goal_edit"),
    path(GOAL + "move/", views.goal_move, name="goal_move"),
    path(GOAL + "archive/", views.goal_archive, name="goal_archive"),
    path(GOAL + "checkins/", views.checkin, name="checkin"),
    path(GOAL + "comments/", views.comment, name="comment"),
    path(GOAL + "proposals/", views.propose, name="propose"),
    path(GOAL + "proposals/<id:proposal_id>/decide/", views.decide, name="decide"),
    path(GOAL + "proposals/<id:proposal_id>/withdraw/", views.withdraw_proposal, name="withdraw_proposal"),
    path(GOAL + "endorse/", views.endorse, name="endorse"),
    path(GOAL + "endorse/withdraw/", views.withdraw_endorsement, name="withdraw_endorsement"),
    path(GOAL + "concerns/", views.raise_concern, name="raise_concern"),
    path(GOAL + "concerns/<id:concern_id>/resolve/", views.resolve_concern, name="resolve_concern"),
    path(GOAL + "links/", views.link_add, name="link_add"),
    path(GOAL + "links/<id:link_id>/remove/", views.link_remove, name="link_remove"),
    path(GOAL + "targets/", views.target_add, name="target_add"),
    path(GOAL + "targets/<id:target_id>/remove/", views.target_remove, name="target_remove"),
    path(GOAL + "targets/<id:target_id>/edit/", views.target_edit, name="target_edit"),
    path(GOAL + "work/", views.work_link, name="work_link"),
    path(GOAL + "work/<id:item_id>/unlink/", views.work_unlink, name="work_unlink"),
    path(ORG + "alignment/", views.alignment, name="alignment"),
    path(ORG + "checkins/overdue/", views.overdue, name="overdue"),
]
