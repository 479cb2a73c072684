"""Settings: observability (issue 13). Read from the environment with truenorth.env helpers."""

from __future__ import annotations

from truenorth.env import env_str

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
