"""Each organisation's DuckDB sources reach only its own directory (`<root>/org-<id>/`, plus what the
operator grants it): every way of naming another organisation's file is refused, without leaking it."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import duckdb
import pytest

from truenorth.core.errors import ValidationFailed
from truenorth.measures import sources
from truenorth.measures.models import DataSource
from truenorth.measures.sources import QueryFailed, SourceUnavailable

SECRET_ROW = "bravo-secret-row"


def _write(path: Path, sql: str) -> None:
    conn = duckdb.connect(str(path))
    try:
        conn.execute(sql)
    finally:
        conn.close()


@pytest.fixture
def dirs(tmp_path, settings, org_a, org_b):
    """Organisation A and B, each with a DuckDB file, a Parquet file and a CSV file of its own."""
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path / "duckdb"]
    a, b = sources.organisation_directory(org_a), sources.organisation_directory(org_b)
    for folder, label in ((a, "alpha-row"), (b, SECRET_ROW)):
        _write(
            folder / "events.duckdb",
            f"CREATE TABLE t AS SELECT DATE '2025-01-01' AS day, 1.0 AS v, '{label}' AS label;"
            f"COPY t TO '{folder / 'data.parquet'}' (FORMAT parquet);"
            f"COPY t TO '{folder / 'data.csv'}' (HEADER);",
        )
    (b / "bravo-only-name.csv").write_text(f"day,v,label\n2025-01-01,1,{SECRET_ROW}\n")
    return a, b


def _source(org, config, name="Files"):
    return DataSource.objects.create(
        organisation=org, name=name, kind="duckdb", config_encrypted=sources.encrypt_config(config)
    )


def test_each_organisation_gets_its_own_private_directory(dirs, org_a, org_b):
    a, b = dirs
    assert a.name == f"org-{org_a.pk}" and b.name == f"org-{org_b.pk}" and a.parent == b.parent
    assert stat.S_IMODE(os.stat(a).st_mode) & 0o077 == 0  # 0700: not even listable by other users
    assert sources.organisation_directories(org_a) == [a.resolve()]


def _other_names(a: Path, b: Path) -> list[str]:
    relative_b = os.path.relpath(b, a)
    return [
        str(b / "events.duckdb"),  # absolute
        f"{relative_b}/events.duckdb",  # relative (taken inside A's directory)
        f"{a}/../{b.name}/events.duckdb",  # ..
        f"{a}/./../../duckdb/{b.name}/events.duckdb",
        str(b),  # the whole directory
        "link.duckdb",  # a symbolic link in A's directory pointing at B's file
        str(a / "link-dir"),  # a symbolic link to B's directory
    ]


def test_config_paths_naming_another_organisations_file_are_refused(admin, dirs):
    a, b = dirs
    (a / "link.duckdb").symlink_to(b / "events.duckdb")
    (a / "link-dir").symlink_to(b, target_is_directory=True)
    for name in _other_names(a, b):
        for config, field in (({"path": name}, "path"), ({"path": "", "files": [name]}, "files")):
            with pytest.raises(ValidationFailed) as caught:
                sources.create_data_source(
                    admin.membership, admin.user, name="X", kind="duckdb", config=config
                )
            assert caught.value.field == field, name
            assert "outside this organisation's DuckDB directories" in caught.value.message
            assert str(b) not in caught.value.message or str(b) in name  # never where a link leads
            assert "bravo-only-name" not in caught.value.message and SECRET_ROW not in caught.value.message
    assert not DataSource.objects.exists()


def test_a_relative_path_is_taken_inside_the_organisations_own_directory(admin, dirs):
    a, _ = dirs
    source = sources.create_data_source(
        admin.membership, admin.user, name="Mine", kind="duckdb", config={"path": "events.duckdb"}
    )
    assert sources.decrypt_config(source)["path"] == str(a / "events.duckdb")
    assert sources.run_query(source, "SELECT day, v FROM t") == [
        (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 1.0)
    ]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT day, v FROM read_csv('{b}/data.csv')",
        "SELECT day, v FROM read_csv('{b}/bravo-only-name.csv')",
        "SELECT day, v FROM read_parquet('{b}/data.parquet')",
        "SELECT day, v FROM read_parquet(['{a}/data.parquet', '{b}/data.parquet'])",
        "SELECT day, v FROM read_csv('{a}/../{bname}/data.csv')",
        "SELECT day, v FROM read_csv('{bname}/data.csv')",
        "SELECT day, v FROM read_csv('../{bname}/data.csv')",
        "SELECT day, v FROM read_csv('{a}/mine/../../{bname}/data.csv')",
        "SELECT day, v FROM read_csv('{a}/*/../../*/*.csv')",
        "SELECT day, v FROM read_csv('{root}/*/*.csv')",
        "SELECT now(), count(*) FROM glob('{root}/*/*')",
        "SELECT now(), count(*) FROM glob('{a}/../*/*')",
        "SELECT now(), count(*) FROM glob('{b}/*')",
        "SELECT now(), length(content) FROM read_text('{b}/data.csv')",
        "SELECT now(), length(content) FROM read_blob('{b}/events.duckdb')",
    ],
)
def test_queries_naming_another_organisations_file_are_refused(org_a, dirs, query):
    a, b = dirs
    (a / "mine").mkdir()
    # A's source may read its own database and every file of its own directory.
    source = _source(org_a, {"path": str(a / "events.duckdb"), "files": [str(a)]})
    assert sources.run_query(source, f"SELECT day, v FROM read_csv('{a}/data.csv')")
    text = query.format(a=a, b=b, bname=b.name, root=a.parent)
    with pytest.raises(QueryFailed) as caught:
        sources.run_query(source, text)
    message = caught.value.message
    assert SECRET_ROW not in message
    assert "bravo-only-name" not in message or "bravo-only-name" in text  # no file names it did not type
    assert "disabled by configuration" in message or "outside" in message


@pytest.mark.parametrize(
    "query",
    [
        "SELECT day, v FROM read_csv('{a}/link.csv')",
        "SELECT day, v FROM read_csv('{a}/link-dir/data.csv')",
        "SELECT day, v FROM read_csv('{a}/*/*.csv')",
        "SELECT now(), count(*) FROM glob('{a}/link-dir/*')",
    ],
)
def test_links_in_the_own_directory_pointing_at_another_organisation_are_refused(org_a, dirs, query):
    """DuckDB would list (glob) through a linked directory and name the other organisation's files in
    its errors: a listed directory holding such a link is refused whole; a file link not listed is
    not reachable at all."""
    a, b = dirs
    (a / "exports").mkdir()
    (a / "exports" / "data.csv").write_text("day,v\n2025-01-01,1\n")
    (a / "link.csv").symlink_to(b / "data.csv")
    (a / "link-dir").symlink_to(b, target_is_directory=True)
    text = query.format(a=a)
    whole = _source(org_a, {"path": "", "files": [str(a)]})
    with pytest.raises(SourceUnavailable) as caught:
        sources.run_query(whole, text)
    assert "link leading outside this organisation's DuckDB directories" in caught.value.message
    assert str(b) not in caught.value.message and "bravo-only-name" not in caught.value.message
    narrow = _source(org_a, {"path": "", "files": [str(a / "exports")]}, name="Exports")
    assert sources.run_query(narrow, f"SELECT day, v FROM read_csv('{a}/exports/*.csv')")
    with pytest.raises(QueryFailed) as refused:
        sources.run_query(narrow, text)
    assert "disabled by configuration" in refused.value.message
    assert SECRET_ROW not in refused.value.message and "bravo-only-name" not in refused.value.message


def test_glob_inside_the_own_directory_lists_only_its_own_files(org_a, dirs):
    a, _ = dirs
    source = _source(org_a, {"path": "", "files": [str(a)]})
    rows = sources.run_query(source, f"SELECT now(), count(*) FROM glob('{a}/*')")
    assert rows[0][1] == len(list(a.iterdir()))
    labels = sources.execute(source, f"SELECT label FROM read_csv('{a}/**/*.csv')", 10).rows
    assert labels == [("alpha-row",)]


def test_a_file_swapped_for_a_link_after_saving_is_refused_when_run(admin, dirs):
    a, b = dirs
    source = sources.create_data_source(
        admin.membership, admin.user, name="Mine", kind="duckdb", config={"path": "events.duckdb"}
    )
    (a / "events.duckdb").unlink()
    (a / "events.duckdb").symlink_to(b / "events.duckdb")
    with pytest.raises(SourceUnavailable) as caught:
        sources.run_query(source, "SELECT day, v FROM t")
    assert "outside this organisation's DuckDB directories" in caught.value.message
    assert SECRET_ROW not in caught.value.message and str(b) not in caught.value.message


def test_a_source_saved_before_the_per_organisation_directories_stops_working(admin, org_a, dirs):
    """Sources pointing at the shared root (the old layout), or saved naming another organisation's
    file, are refused when tested and when run, until the files move into org-<id>/."""
    a, b = dirs
    shared = a.parent / "shared.csv"
    shared.write_text("day,v\n2025-01-01,1\n")
    old = _source(org_a, {"path": "", "files": [str(shared)]})
    with pytest.raises(SourceUnavailable, match="outside this organisation's DuckDB directories"):
        sources.run_query(old, f"SELECT day, v FROM read_csv('{shared}')")
    other = _source(org_a, {"path": str(b / "events.duckdb"), "files": []}, name="Other's")
    for attempt in (
        lambda: sources.test_data_source(admin.membership, other.pk),
        lambda: sources.run_query(other, "SELECT day, v FROM t"),
    ):
        with pytest.raises(SourceUnavailable) as caught:
            attempt()
        assert "outside this organisation's DuckDB directories" in caught.value.message
        assert SECRET_ROW not in caught.value.message


def test_the_operator_can_grant_an_organisation_another_directory(
    admin, outsider, dirs, tmp_path, settings, org_a
):
    shared = tmp_path / "shared-exports"
    shared.mkdir()
    (shared / "nps.csv").write_text("month,score\n2025-01-01,31\n")
    settings.TRUENORTH_DUCKDB_GRANTS = {org_a.pk: [shared]}
    source = sources.create_data_source(
        admin.membership, admin.user, name="NPS", kind="duckdb", config={"path": "", "files": [str(shared)]}
    )
    assert sources.run_query(source, f"SELECT month, score FROM read_csv('{shared}/nps.csv')")
    with pytest.raises(ValidationFailed, match="outside this organisation's DuckDB directories"):
        sources.create_data_source(
            outsider.membership,
            outsider.user,
            name="NPS",
            kind="duckdb",
            config={"path": "", "files": [str(shared)]},
        )


def test_timestamptz_results_come_back_as_utc_instants(org_a, dirs):
    """DuckDB's TIMESTAMPTZ needs pytz to reach Python; TrueNorth converts it in DuckDB instead."""
    a, _ = dirs
    source = _source(org_a, {"path": str(a / "events.duckdb"), "files": []})
    rows = sources.run_query(
        source,
        "SELECT TIMESTAMPTZ '2025-01-01 10:00:00+02' AS at, 1.5 AS v "
        "UNION ALL SELECT TIMESTAMPTZ '2025-01-02 00:30:00-05', 2",
    )
    assert rows == [
        (dt.datetime(2025, 1, 1, 8, tzinfo=dt.UTC), 1.5),
        (dt.datetime(2025, 1, 2, 5, 30, tzinfo=dt.UTC), 2.0),
    ]
    fresh = sources.execute(
        source, "SELECT max(day::TIMESTAMPTZ), 'x', day::TIMESTAMPTZ FROM t GROUP BY day", 10
    )
    assert fresh.rows == [
        (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "x", dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    ]
