"""History is append-only on both databases in every way: UPDATE and DELETE refused on SQLite too (0002
refused only UPDATE there), and TRUNCATE refused on PostgreSQL. The same helper protects observations,
target observations and result snapshots (truenorth.core.append_only)."""

import importlib

from django.db import migrations

from truenorth.core.append_only import protect

TABLE = "history_historyentry"
previous = importlib.import_module("truenorth.history.migrations.0002_append_only_triggers")


def drop_old_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS history_no_update_or_delete ON {TABLE}")
        schema_editor.execute("DROP FUNCTION IF EXISTS history_append_only()")
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS history_no_update")


class Migration(migrations.Migration):
    dependencies = [("history", "0002_append_only_triggers")]
    operations = [
        migrations.RunPython(drop_old_triggers, previous.forward),
        protect(TABLE, "history entries are append-only"),
    ]
