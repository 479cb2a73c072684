"""Value pages: `measures` (the catalogue, a product's measures, a measure with its chart and
observations, imports, the value dashboard, investment) and `data_sources` (data source pages, SQL
measures and their query editor). truenorth/measures/urls.py routes to both.
"""

from __future__ import annotations

from truenorth.measures.views.data_sources import (
    measure_query,
    source_delete,
    source_detail,
    source_list,
    source_test,
    sql_context,
    sql_measure_add,
)
from truenorth.measures.views.measures import (
    catalogue,
    dashboard,
    investments,
    measure,
    measure_chart_svg,
    measure_export,
    measure_import,
    measure_refresh,
    observation_add,
    observation_correct,
    product_measures,
    value_measure,
)

__all__ = [
    "catalogue",
    "dashboard",
    "investments",
    "measure",
    "measure_chart_svg",
    "measure_export",
    "measure_import",
    "measure_query",
    "measure_refresh",
    "observation_add",
    "observation_correct",
    "product_measures",
    "source_delete",
    "source_detail",
    "source_list",
    "source_test",
    "sql_context",
    "sql_measure_add",
    "value_measure",
]
