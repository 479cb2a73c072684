"""The one huey task behind every job: run it by id (services.execute records the outcome)."""

from __future__ import annotations

from huey.contrib.djhuey import db_task


@db_task(retries=0)
def run_job(job_id: int) -> None:
    from truenorth.jobs.services import discover, execute

    discover()
    execute(job_id)
