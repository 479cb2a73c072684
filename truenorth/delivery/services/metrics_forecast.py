"""Delivery metrics, forecasts: the result type, the checks of the questions and the backtest.
Re-exported by `services.metrics` (which keeps `_history`, `forecast_items_by` and `forecast_when`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from truenorth.core.errors import ValidationFailed

FORECAST_HISTORY_DAYS = 180
MAX_FORECAST_ITEMS = 100_000
MAX_FORECAST_DAYS = 3 * 366
FORECAST_TRIALS = 10_000
BACKTEST_TRIALS = 2_000
FORECAST_SEED = 12


@dataclass
class ForecastResult:
    question: str  # "how_many" or "when"
    target: Any  # the date (how many by) or the number of items (when)
    forecast: Any  # forecast.Forecast
    backtest: Any  # forecast.Backtest | None
    history_days: int
    today: dt.date


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def check_by(by: dt.date, today: dt.date | None = None) -> int:
    today = today or _today()
    days = (by - today).days
    if days < 1:
        raise ValidationFailed("The date must be after today.", field="by")
    if days > MAX_FORECAST_DAYS:
        raise ValidationFailed(f"The date may be at most {MAX_FORECAST_DAYS} days ahead.", field="by")
    return days


def check_items(items: int) -> int:
    if not 1 <= items <= MAX_FORECAST_ITEMS:
        raise ValidationFailed(
            f"The number of items must be between 1 and {MAX_FORECAST_ITEMS}.", field="items"
        )
    return items


def _backtest(daily: list[int], horizon: int, seed: int) -> Any:
    from truenorth.delivery import forecast

    if horizon < 1 or not any(daily):
        return None
    try:
        return forecast.backtest(
            daily,
            horizon_days=horizon,
            step_days=7,
            min_history=min(28, max(len(daily) // 3, 7)),
            trials=BACKTEST_TRIALS,
            seed=seed,
        )
    except ValueError:  # not enough history to test a horizon this long
        return None
