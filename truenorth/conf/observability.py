"""Settings: logs, metrics and error reports (docs/operations.md, "Metrics, logs and error reports").

- Logs: one line per record on standard error, as text (default) or JSON objects
  (TRUENORTH_LOG_FORMAT=json, truenorth/core/jsonlog.py; `truenorth serve` writes gunicorn's access log
  in JSON too).
- Metrics: `/metrics` (truenorth/ops/metrics.py) answers only with `Authorization: Bearer
  <TRUENORTH_METRICS_TOKEN>`; without a token it does not exist (404).
- Error reports: with SENTRY_DSN, unhandled errors (and error log lines) go to Sentry or a compatible
  service; it needs the optional extra `truenorth[sentry]`. No personal data is sent.
"""

from __future__ import annotations

import math
from typing import Any

from truenorth.env import ConfigError, env_str

__all__ = [
    "LOGGING",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "TRUENORTH_LOG_FORMAT",
    "TRUENORTH_METRICS_TOKEN",
    "TRUENORTH_SENTRY_ENVIRONMENT",
    "TRUENORTH_SENTRY_TRACES_SAMPLE_RATE",
]

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").strip().upper() or "INFO"
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ConfigError(f"LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
TRUENORTH_LOG_FORMAT = env_str("TRUENORTH_LOG_FORMAT", "text").strip().lower() or "text"
if TRUENORTH_LOG_FORMAT not in ("text", "json"):
    raise ConfigError(f"TRUENORTH_LOG_FORMAT: expected text or json, got {TRUENORTH_LOG_FORMAT!r}")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "truenorth.core.jsonlog.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": TRUENORTH_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG only) would print a second, plain-text copy: its records reach
        # the root handler above instead. runserver's request lines too.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# At least 16 characters: it is the only thing between the internet and the instance's activity figures.
TRUENORTH_METRICS_TOKEN = env_str("TRUENORTH_METRICS_TOKEN", "").strip()
if TRUENORTH_METRICS_TOKEN and len(TRUENORTH_METRICS_TOKEN) < 16:
    raise ConfigError(
        "TRUENORTH_METRICS_TOKEN: use at least 16 characters (e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`), or leave it empty to turn /metrics off"
    )

SENTRY_DSN = env_str("SENTRY_DSN", "").strip()
TRUENORTH_SENTRY_ENVIRONMENT = env_str("TRUENORTH_SENTRY_ENVIRONMENT", "production").strip() or "production"


def _sample_rate(name: str, raw: str) -> float:
    try:
        rate = float(raw.strip() or "0")
    except ValueError:
        raise ConfigError(f"{name}: expected a number from 0 to 1, got {raw!r}") from None
    if not (math.isfinite(rate) and 0 <= rate <= 1):
        raise ConfigError(f"{name}: expected a number from 0 to 1, got {raw!r}")
    return rate


# Share of requests traced for Sentry's performance view (0: errors only).
TRUENORTH_SENTRY_TRACES_SAMPLE_RATE = _sample_rate(
    "TRUENORTH_SENTRY_TRACES_SAMPLE_RATE", env_str("TRUENORTH_SENTRY_TRACES_SAMPLE_RATE", "0")
)


def _release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"truenorth@{version('truenorth')}"
    except PackageNotFoundError:
        return "truenorth@unknown"


def _init_sentry() -> None:
    """Report unhandled errors (and ERROR log lines) to SENTRY_DSN, without personal data."""
    try:
        import sentry_sdk
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        raise ConfigError(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install 'truenorth[sentry]', "
            "or unset SENTRY_DSN"
        ) from None
    try:
        sentry_sdk.init(
            dsn=SENTRY_DSN,
            integrations=[DjangoIntegration(transaction_style="url")],  # the route, never the raw path
            send_default_pii=False,
            traces_sample_rate=TRUENORTH_SENTRY_TRACES_SAMPLE_RATE,
            environment=TRUENORTH_SENTRY_ENVIRONMENT,
            release=_release(),
        )
    except Exception as exc:  # sentry_sdk raises BadDsn (an Exception) on a malformed DSN
        raise ConfigError(f"SENTRY_DSN: {exc}") from None


if SENTRY_DSN:
    _init_sentry()
