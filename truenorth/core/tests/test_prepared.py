"""truenorth.core.prepared: the cursor of the per-request statements is Django's (logged, wrapped), and on
PostgreSQL binds on the server so that psycopg prepares what a connection sends repeatedly."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from truenorth.core import prepared

SQL = "SELECT COUNT(*) FROM orgs_organisation WHERE slug = %s AND id > %s"


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [str(row[0]) for row in cursor.fetchall()]


@pytest.mark.django_db
def test_its_statements_are_logged_and_answer_like_djangos() -> None:
    with CaptureQueriesContext(connection) as queries, prepared.cursor(connection) as cursor:
        cursor.execute(SQL, ["nobody-has-this-slug", 0])
        found = cursor.fetchone()
    assert found == (0,)
    assert len(queries) == 1 and "orgs_organisation" in queries.captured_queries[0]["sql"]


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_on_postgresql_a_repeated_statement_is_prepared_and_djangos_own_cursor_never_is() -> None:
    connection.ensure_connection()
    threshold = connection.connection.prepare_threshold
    assert threshold == 5
    for _ in range(threshold + 1):
        with connection.cursor() as cursor:
            cursor.execute(SQL.replace("id >", "id >="), ["nobody-has-this-slug", 0])
        with prepared.cursor(connection) as cursor:
            cursor.execute(SQL, ["nobody-has-this-slug", 0])
    statements = _prepared_statements()
    assert any("id > $2" in sql for sql in statements), statements
    assert not any("id >=" in sql for sql in statements), statements
