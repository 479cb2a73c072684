"""The Value pillar as the Vision pillar sees it: a port that the measures app fills in at start-up.

Vision (strategy) sits below Value (measures): measures may import strategy, never the other way
round. Yet a goal's target may track a Value measure (``TargetMeasure.measure``): its latest value,
its staleness and a check-in's new value then come from that measure. Everything Vision needs of the
Value pillar goes through the functions of the ``ValuePort`` registered here, so strategy code never
imports ``truenorth.measures``: ``MeasuresConfig.ready()`` registers the implementation
(``truenorth/measures/vision_adapter.py``), and the strategy services call ``value_port.port()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from django.db.models import QuerySet, Subquery

    from truenorth.accounts.models import User
    from truenorth.orgs.models import Membership


class TrackedMeasure(Protocol):
    """What Vision reads of a Value measure a target tracks."""

    pk: Any
    name: str
    unit: str
    archived_at: dt.datetime | None


class ValuePort(Protocol):
    def trackable_measures(self, organisation_id: int, product_id: int | None) -> QuerySet[Any]:
        """The organisation's live measures of that product and its organisation-wide ones (None: the
        organisation-wide ones only), their product loaded, in (product, name) order."""
        ...

    def measure_of(self, organisation_id: int, measure_id: int) -> TrackedMeasure | None:
        """The organisation's measure with that id (archived or not); None when there is none."""
        ...

    def measure_id_named(self, organisation_id: int, name: str, product: str | None) -> int | None:
        """The id of the organisation's measure with that name, of the product named (None:
        organisation-wide); the oldest when several match, None when none does."""
        ...

    def latest_value(self, measure_ref: Any) -> Subquery[Any]:
        """A subquery expression: the latest current (non-superseded) value of the measure referred to
        (e.g. ``OuterRef("measure_id")``), for annotating target measures in one query."""
        ...

    def stale_measure_ids(self, measure_ids: Iterable[int], now: dt.datetime) -> set[int]:
        """The measures among these that are stale at `now` (no current observation within their
        cadence) or archived, in one query."""
        ...

    def record_value(
        self,
        membership: Membership,
        actor: User,
        measure_id: int,
        value: Any,
        *,
        note: str,
        idempotency_key: str,
    ) -> Any:
        """Record a value on the measure (its rules and history apply) and return the observation."""
        ...


_port: ValuePort | None = None


def register(implementation: ValuePort) -> None:
    """Called once by the Value pillar's app config (registering again replaces it, e.g. in tests)."""
    global _port
    _port = implementation


def port() -> ValuePort:
    if _port is None:
        raise RuntimeError("No Value pillar is registered: truenorth.measures must be in INSTALLED_APPS.")
    return _port
