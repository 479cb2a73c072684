"""Chart annotations that higher pillars put on a measure's chart (decisions, releases…).

Value sits below Validation, so the measure page does not import the pillars that annotate it: each
of them registers a source here from its AppConfig.ready() (hypotheses: the decisions on hypotheses
expecting to move the measure), and the page asks `for_measure`. A source costs its own queries
(tests/test_query_counts.py counts them on the measure page).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from truenorth.measures.charts import Annotation
from truenorth.orgs.models import Membership

AnnotationSource = Callable[[Membership, int], Sequence[Annotation]]

_sources: list[AnnotationSource] = []


def register(source: AnnotationSource) -> AnnotationSource:
    """Add a source of (date, label) markers for a measure's chart (once; usable as a decorator)."""
    if source not in _sources:
        _sources.append(source)
    return source


def for_measure(membership: Membership, measure_id: int) -> list[Annotation]:
    """Every registered source's markers for this measure, source by source (the chart places them
    by date whatever their order)."""
    marks: list[Annotation] = []
    for source in _sources:
        marks.extend(source(membership, measure_id))
    return marks
