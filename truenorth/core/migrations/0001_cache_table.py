"""The shared cache's tables (truenorth/conf/limits.py): the rate-limit counters (core.RateCounter) and
Django's DatabaseCache table `truenorth_cache`, created wherever the schema is (every database, the
test databases too), whichever cache is configured, so switching from Redis back to the database works."""

from __future__ import annotations

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CACHE_TABLE = "truenorth_cache"  # = truenorth.conf.limits.CACHE_TABLE


def create_cache_table(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, CACHE_TABLE, dry_run=False)


def drop_cache_table(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(CACHE_TABLE)}")


class Migration(migrations.Migration):
    initial = True

    dependencies = []  # type: ignore[var-annotated]

    operations = [
        migrations.CreateModel(
            name="RateCounter",
            fields=[
                ("counter_key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("count", models.BigIntegerField()),
                ("expires", models.BigIntegerField(db_index=True)),
            ],
            options={"db_table": "truenorth_rate_counter"},
        ),
        migrations.RunPython(create_cache_table, drop_cache_table),
    ]
