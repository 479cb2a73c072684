"""The demo's mail part: settings for the demo people, follows, one sent reminder and one sent digest;
safe to load twice; nothing actually sent."""

from __future__ import annotations

import pytest
from django.core import mail as django_mail

from truenorth.demo import DEMO_ORG, MEMBER, STAKEHOLDER, load_demo
from truenorth.engagement.models import Follow, NotificationSettings, OutgoingEmail
from truenorth.orgs.models import Organisation

pytestmark = pytest.mark.django_db


def test_demo_mail(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    load_demo()
    load_demo()  # twice: nothing doubled
    org = Organisation.objects.get(slug=DEMO_ORG[1])
    assert NotificationSettings.objects.filter(organisation=org).count() == 4
    assert not NotificationSettings.objects.get(organisation=org, user__email=STAKEHOLDER).checkin_reminders
    assert Follow.objects.filter(organisation=org, user__email=MEMBER).count() >= 1
    mine = OutgoingEmail.objects.filter(organisation=org, kind__in=["digest", "reminder"])
    assert sorted(mine.values_list("kind", flat=True)) == ["digest", "reminder"]
    assert set(mine.values_list("status", flat=True)) == {"sent"}
    digest = mine.get(kind="digest")
    assert digest.to == MEMBER and "List-Unsubscribe" in digest.headers
    assert not [m for m in django_mail.outbox if m.subject in set(mine.values_list("subject", flat=True))]
