"""The organisation dashboard's Engagement card: alignment, stakeholders, overdue check-ins and the last
health check (its fixed query count is pinned in tests/test_query_counts.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.utils import timezone

from truenorth.engagement.services import health, stakeholders
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal

if TYPE_CHECKING:
    from conftest import Persona


def _card(persona: Persona) -> str:
    html = persona.client.get("/o/alpha/").content.decode()
    start = html.index('data-testid="engagement-card"')
    return html[start : html.index("</article>", start)]


def test_an_empty_organisation(owner: Persona) -> None:
    card = _card(owner)
    assert "No alignment pulse yet." in card
    assert "No stakeholders yet." in card
    assert "0 overdue check-ins" in card
    assert "Run a health check" in card


def test_the_card_shows_the_real_state(owner: Persona, member: Persona) -> None:
    m = owner.membership
    assert m is not None
    goal = strategy.create_goal(m, owner.user, title="Late", status="active", owner_id=member.user.pk)
    Goal.objects.filter(pk=goal.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    stakeholders.create_stakeholder(
        m, owner.user, name="Legal lead", influence=5, interest=5, current_engagement="neutral",
        desired_engagement="leading",
    )  # fmt: skip
    stakeholders.create_stakeholder(
        m, owner.user, name="Support desk", influence=1, interest=1, current_engagement="neutral",
        desired_engagement="neutral",
    )  # fmt: skip
    saved = health.save_assessment(m, owner.user)
    card = _card(owner)
    assert "2 stakeholders</a>: 1 with an engagement gap" in card
    assert "1 overdue check-in</a>" in card
    assert (
        f"<strong>{saved.scores['overall']}</strong>/100" in card and 'href="/o/alpha/health-check/"' in card
    )
    # Everyone's overdue check-ins are counted; "my overdue check-ins" still lists only mine.
    html = owner.client.get("/o/alpha/").content.decode()
    assert "None. Well done." in html
    assert "Late</a>" in member.client.get("/o/alpha/").content.decode()
