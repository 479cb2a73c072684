from __future__ import annotations

from django.urls import path

from truenorth.measures import source_views, views

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
    path(MEASURE + "query/", source_views.measure_query, name="query"),
    path(PRODUCT + "measures/sql/", source_views.sql_measure_add, name="sql_measure_add"),
    path(ORG + "data-sources/", source_views.source_list, name="sources"),
    path(ORG + "data-sources/<id:source_id>/", source_views.source_detail, name="source"),
    path(ORG + "data-sources/<id:source_id>/test/", source_views.source_test, name="source_test"),
    path(ORG + "data-sources/<id:source_id>/delete/", source_views.source_delete, name="source_delete"),
    path(MEASURE + "export.csv", views.measure_export, {"fmt": "csv"}, name="export_csv"),
    path(MEASURE + "export.json", views.measure_export, {"fmt": "json"}, name="export_json"),
    path(MEASURE + "chart.svg", views.measure_chart_svg, name="chart_svg"),
]
