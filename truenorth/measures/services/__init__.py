"""Value: the EBM catalogue, measures, observations (append-only), staleness, balance, investment.

Every rule of the pillar lives here; web views, the API and the CLI call these functions.
Reads take the caller's Membership (which fixes the organisation: nothing outside it is ever found);
writes also take the acting User, need a member (stakeholders read only) and record history.
Observations are never edited or deleted: a correction is a new row that supersedes the old one.

One module per workflow: `measures`, `observations`, `balance` (staleness and Key Value Areas),
`targets` (goal targets tracking a measure), `investment` (and return), `export`, `catalogue`;
`_common` holds the validators and lookups they share. Callers import from this package.
"""

from __future__ import annotations

from truenorth.measures.services._common import (
    FED_SOURCES,
    FUTURE_TOLERANCE,
    MAX_CADENCE_DAYS,
    MAX_TEXT,
    data_source_of,
    parse_timestamp,
    require_query_author,
)
from truenorth.measures.services.balance import (
    kva_balance,
    missing_kvas,
    stale_measures,
    with_last_observed,
    with_latest,
)
from truenorth.measures.services.catalogue import (
    catalogue_of,
    seed_catalogue,
)
from truenorth.measures.services.export import (
    EXPORT_COLUMNS,
    export_observations,
)
from truenorth.measures.services.investment import (
    INVESTMENT_FIELDS,
    ROI,
    ROIPoint,
    add_investment,
    invested,
    investments_of,
    return_on_investment,
    set_value_measure,
    value_measure_of,
)
from truenorth.measures.services.measures import (
    CLEARABLE,
    MEASURE_FIELDS,
    UPDATABLE,
    adopt_catalogue_measure,
    archive_measure,
    create_measure,
    get_measure,
    measures_of,
    update_measure,
)
from truenorth.measures.services.observations import (
    BULK_BATCH,
    DUPLICATE_CHECK_CHUNK,
    BatchResult,
    CleanRow,
    ObservationIn,
    add_observation,
    add_observations,
    batch_digest,
    clean_idempotency_key,
    clean_rows,
    correct_observation,
    existing_duplicates,
    find_batch,
    observations_of,
    record_refresh,
    store_batch,
)
from truenorth.measures.services.targets import (
    link_target,
)
from truenorth.orgs.services import require_writer

__all__ = [
    "BULK_BATCH",
    "CLEARABLE",
    "DUPLICATE_CHECK_CHUNK",
    "EXPORT_COLUMNS",
    "FED_SOURCES",
    "FUTURE_TOLERANCE",
    "INVESTMENT_FIELDS",
    "MAX_CADENCE_DAYS",
    "MAX_TEXT",
    "MEASURE_FIELDS",
    "ROI",
    "UPDATABLE",
    "BatchResult",
    "CleanRow",
    "ObservationIn",
    "ROIPoint",
    "add_investment",
    "add_observation",
    "add_observations",
    "adopt_catalogue_measure",
    "archive_measure",
    "batch_digest",
    "catalogue_of",
    "clean_idempotency_key",
    "clean_rows",
    "correct_observation",
    "create_measure",
    "data_source_of",
    "existing_duplicates",
    "export_observations",
    "find_batch",
    "get_measure",
    "invested",
    "investments_of",
    "kva_balance",
    "link_target",
    "measures_of",
    "missing_kvas",
    "observations_of",
    "parse_timestamp",
    "record_refresh",
    "require_query_author",
    "require_writer",
    "return_on_investment",
    "seed_catalogue",
    "set_value_measure",
    "stale_measures",
    "store_batch",
    "update_measure",
    "value_measure_of",
    "with_last_observed",
    "with_latest",
]
