"""Engagement background work: webhooks.

- `send_webhook_delivery(delivery_id)`: send one delivery now (queued by services.webhooks when a
  delivery is created: an event, a test, a replay).
- `send_due_webhooks`: every minute, send the deliveries that are due (retries whose time has come,
  and new ones a stopped worker never sent). A lock keeps two runs from overlapping; each delivery is
  claimed atomically anyway, so two workers never send the same one twice.
"""

from __future__ import annotations

from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from truenorth.engagement.services import webhooks


@db_task()
def send_webhook_delivery(delivery_id: int) -> dict[str, Any]:
    done = webhooks.send_delivery(delivery_id)
    if done is None:
        return {"sent": False}
    return {"sent": True, "status": done.status, "attempts": done.attempts}


@db_periodic_task(crontab(minute="*"))
@lock_task("truenorth-webhooks-due")
def send_due_webhooks() -> dict[str, int]:
    return webhooks.send_due()
