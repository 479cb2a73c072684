"""Background jobs of the accounts app (huey; `truenorth worker` runs the periodic ones).

- `purge_login_attempts`: every hour, delete failed sign-ins older than LOGIN_FAILURE_WINDOW_SECONDS
  (they no longer count towards any throttle, and they name addresses and e-mail addresses).
"""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from truenorth.accounts.services import purge_old_login_attempts

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="7"))
@lock_task("truenorth-purge-login-attempts")
def purge_login_attempts() -> int:
    deleted = purge_old_login_attempts()
    if deleted:
        logger.info("Purged %d old failed sign-in(s).", deleted)
    return deleted
