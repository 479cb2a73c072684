"""Signal receivers of the Engagement pillar (connected in EngagementConfig.ready()).

Webhooks: every new history entry (a tracked change of a goal, proposal, check-in, measure,
hypothesis, decision…) whose kind webhooks announce (services.webhooks.event_kind_for) becomes an event;
once the transaction commits, `webhooks.emit` creates the deliveries (one query when the organisation has
no active webhook) and queues their sending on the worker. Nothing is sent in the request.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from truenorth.engagement.services import webhooks
from truenorth.history.models import HistoryEntry


@receiver(post_save, sender=HistoryEntry, dispatch_uid="engagement.webhooks.history")
def history_to_webhooks(
    sender: Any, instance: HistoryEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if not created or raw:
        return
    kind = webhooks.event_kind_for(instance.object_type, instance.action, instance.changes)
    if kind is None:
        return
    payload = webhooks.history_payload(instance, kind)
    transaction.on_commit(partial(webhooks.emit, instance.organisation_id, kind, payload))
