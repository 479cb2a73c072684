"""Make history append-only in the database too, not only in the application.

PostgreSQL refuses UPDATE and DELETE on history rows. SQLite refuses UPDATE only: Django's
test-database flush deletes rows on SQLite, and TRUNCATE on PostgreSQL bypasses row triggers.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION history_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'history entries are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER history_no_update_or_delete BEFORE UPDATE OR DELETE ON history_historyentry
    FOR EACH ROW EXECUTE FUNCTION history_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS history_no_update_or_delete ON history_historyentry;
DROP FUNCTION IF EXISTS history_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER history_no_update BEFORE UPDATE ON history_historyentry
BEGIN SELECT RAISE(ABORT, 'history entries are append-only'); END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS history_no_update;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("history", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
