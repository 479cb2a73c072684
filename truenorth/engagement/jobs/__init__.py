"""Engagement's background work (found by jobs.services.discover): job runners and huey periodic tasks,
one module per part."""

from truenorth.engagement.jobs import activity, briefs, health, mail, pulses, stakeholders, webhooks  # noqa: F401
