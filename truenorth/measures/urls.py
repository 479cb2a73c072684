from __future__ import annotations

from django.urls import path

from truenorth.measures import views

app_name = "measures"

ORG = "o/<slug:org_slug>/"
PRODUCT = ORG + "products/<id:product_id>/"
MEASURE = ORG + "measures/<id:measure_id>/"

urlpatterns = [
    path(ORG + "measures/catalogue/", views.catalogue, name="catalogue"),
    path(PRODUCT + "measures/", views.product_measures, name="product_measures"),
    path(PRODUCT + "value/", views.dashboard, name="dashboard"),
    path(PRODUCT + "investment/", views.investments, name="investments"),
    path(PRODUCT + "investment/value-measure/", views.value_measure, name="value_measure"),
    path(MEASURE, views.measure, name="measure"),
    path(MEASURE + "observations/", views.observation_add, name="observation_add"),
    path(
        MEASURE + "observations/<id:observation_id>/correct/",
        views.observation_correct,
        name="observation_correct",
    ),
    path(MEASURE + "import/", views.measure_import, name="import"),
    path(MEASURE + "refresh/", views.measure_refresh, name="refresh"),
    path(MEASURE + "export.csv", views.measure_export, {"fmt": "csv"}, name="export_csv"),
    path(MEASURE + "export.json", views.measure_export, {"fmt": "json"}, name="export_json"),
    path(MEASURE + "chart.svg", views.measure_chart_svg, name="chart_svg"),
]
