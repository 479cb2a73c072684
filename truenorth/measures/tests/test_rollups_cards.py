"""The measure cards built in Python (dashboard_cards.py) are the markup the template wrote."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.template import Context, Template

from truenorth.measures.dashboard import MeasureSummary
from truenorth.measures.dashboard_cards import card
from truenorth.measures.models import KVA, Measure

# The card as measures/_dashboard_body.html wrote it before (issue 13).
TEMPLATE = """{% with m=s.measure %}
      <li class="measure-card" data-testid="measure-card">
        <a class="name" href="{% url 'measures:measure' org.slug m.pk %}">{{ m.name }}</a>
        {% if s.latest_value is not None %}<span class="latest">{{ s.latest_value|num }}</span>{% if m.unit %} <small>{{ m.unit }}</small>{% endif %}{% else %}<span class="muted">no observation yet</span>{% endif %}
        {% if s.stale %} <span class="badge badge-stale" title="No observation within its {{ m.cadence_days }}-day cadence">stale</span>{% endif %}
        {% if s.sparkline %}<svg class="sparkline" viewBox="0 0 120 28" preserveAspectRatio="none" role="img" aria-label="Trend of {{ m.name }} over the period"><polyline points="{{ s.sparkline }}"/></svg>{% endif %}
        <span class="meta">
          {% if s.latest_at %}<span>{{ s.latest_at|date:"Y-m-d" }}</span>{% endif %}
          {% if s.change is not None %}<span class="{% if s.improving is True %}change-better{% elif s.improving is False %}change-worse{% endif %}">{% if s.change > 0 %}▲ +{% elif s.change < 0 %}▼ {% else %}= {% endif %}{{ s.change|num }} in period<span class="visually-hidden">{% if s.improving is True %} (better){% elif s.improving is False %} (worse){% endif %}</span></span>{% endif %}
          {% if s.distance is not None %}<span>{% if s.distance == 0 %}target reached{% else %}{{ s.distance|num }} to target {{ m.target|num }}{% endif %}</span>{% elif m.target is None %}<span>no target</span>{% endif %}
        </span>
      </li>
    {% endwith %}"""


def _flat(html: str) -> str:
    return re.sub(r"\s+", " ", html).strip()


@pytest.mark.parametrize(
    ("fields", "measure_fields"),
    [
        ({}, {}),
        (
            {"latest_value": 12.3456789, "latest_at": dt.datetime(2026, 6, 1, 23, 30, tzinfo=dt.UTC)},
            {"unit": "%"},
        ),
        (
            {
                "latest_value": 0.000123,
                "change": 3.5,
                "distance": 0.0,
                "stale": True,
                "sparkline": "2.0,3.0 4,5",
            },
            {},
        ),
        (
            {"latest_value": 5, "change": -2, "distance": 3, "sparkline": ""},
            {"target": 2, "direction": "lower"},
        ),
        ({"latest_value": 5, "change": 0.0, "distance": 1}, {"target": 6}),
    ],
)
def test_a_card_is_the_templates_markup(owner, settings, fields, measure_fields) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    m = Measure.objects.create(
        organisation=owner.membership.organisation,
        name='Net <promoter> "score"',
        kva=KVA.CURRENT_VALUE,
        cadence_days=7,
        **measure_fields,
    )
    values = {
        "latest_value": None,
        "latest_at": None,
        "start_value": None,
        "buckets": [],
        "change": None,
        "slope_per_day": None,
        "distance": None,
        "stale": False,
        "sparkline": "",
    } | fields
    s = MeasureSummary(measure=m, **values)
    org = owner.membership.organisation
    expected = Template(TEMPLATE).render(Context({"s": s, "org": org}))
    assert _flat(card(s, org.slug)) == _flat(expected)
