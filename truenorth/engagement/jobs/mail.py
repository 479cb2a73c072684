"""Engagement background work: mail.

- `send_email_task(email_id)`: send one recorded message (queued by services.mail.queue_email on commit).
- `send_due_emails`: every minute, send what is due (retries whose wait is over, messages whose queueing
  was lost, messages whose sender died mid-send).
- `send_due_reminders`: every 15 minutes, check-in reminders for goals whose check-in fell due.
- `send_weekly_digests`: hourly, the digest of each person whose weekday it is (once per week).
"""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from truenorth.engagement.services import mail


@db_task(retries=0)
def send_email_task(email_id: int) -> str | None:
    return mail.deliver(email_id)


@db_periodic_task(crontab(minute="*"))
@lock_task("truenorth-engagement-send-due-emails")
def send_due_emails() -> dict[str, int]:
    return mail.send_due()



@db_periodic_task(crontab(minute="*/15"))
@lock_task("truenorth-engagement-reminders")
def send_due_reminders() -> dict[str, int]:
    from truenorth.engagement.services import mail_reminders

    return {"reminders": len(mail_reminders.send_reminders())}


@db_periodic_task(crontab(minute="7"))
@lock_task("truenorth-engagement-digests")
def send_weekly_digests() -> dict[str, int]:
    from truenorth.engagement.services import mail_digest

    outcomes = mail_digest.send_digests()
    return {"sent": sum(o.status == "sent" for o in outcomes), "people": len(outcomes)}
