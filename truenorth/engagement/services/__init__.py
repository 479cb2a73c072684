"""Engagement services, one module per part (stakeholders, pulses, briefs, mail, webhooks, activity,
health). Callers import the module they need: `from truenorth.engagement.services import pulses`."""
