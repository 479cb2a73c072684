from __future__ import annotations

from django.urls import path

from truenorth.measures.views import data_sources, measures

app_name = "measures"

ORG = "o/<slug:org_slug>/"
PRODUCT = ORG + "products/<id:product_id>/"
MEASURE = ORG + "measures/<id:measure_id>/"

urlpatterns = [
    path(ORG + "measures/catalogue/", measures.catalogue, name="catalogue"),
    path(PRODUCT + "measures/", measures.product_measures, name="product_measures"),
    path(PRODUCT + "value/", measures.dashboard, name="dashboard"),
    path(PRODUCT + "investment/", measures.investments, name="investments"),
    path(PRODUCT + "investment/value-measure/", measures.value_measure, name="value_measure"),
    path(MEASURE, measures.measure, name="measure"),
    path(MEASURE + "observations/", measures.observation_add, name="observation_add"),
    path(
        MEASURE + "observations/<id:observation_id>/correct/",
        measures.observation_correct,
        name="observation_correct",
    ),
    path(MEASURE + "import/", measures.measure_import, name="import"),
    path(MEASURE + "refresh/", measures.measure_refresh, name="refresh"),
    path(MEASURE + "query/", data_sources.measure_query, name="query"),
    path(PRODUCT + "measures/sql/", data_sources.sql_measure_add, name="sql_measure_add"),
    path(ORG + "data-sources/", data_sources.source_list, name="sources"),
    path(ORG + "data-sources/<id:source_id>/", data_sources.source_detail, name="source"),
    path(ORG + "data-sources/<id:source_id>/test/", data_sources.source_test, name="source_test"),
    path(ORG + "data-sources/<id:source_id>/delete/", data_sources.source_delete, name="source_delete"),
    path(MEASURE + "export.csv", measures.measure_export, {"fmt": "csv"}, name="export_csv"),
    path(MEASURE + "export.json", measures.measure_export, {"fmt": "json"}, name="export_json"),
    path(MEASURE + "chart.svg", measures.measure_chart_svg, name="chart_svg"),
]
