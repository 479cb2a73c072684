"""Daily roll-ups of observations for the value dashboard (issue 13), filled from the existing
observations in the instance's TIME_ZONE (truenorth.measures.rollups explains how they stay right).

The roll-ups are derived data, not evidence: not protected like the observations (append-only), which
this migration does not alter (their triggers stay in place)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Recompute every roll-up from the observations (plain SQL on the tables; records the zone)."""
    from django.conf import settings

    from truenorth.measures import rollups

    alias = schema_editor.connection.alias
    rollups.rebuild(using=alias, record_zone=False)
    apps.get_model("measures", "RollupState").objects.using(alias).create(time_zone=settings.TIME_ZONE)


class Migration(migrations.Migration):
    dependencies = [("measures", "0004_evidence_append_only_and_unique")]

    operations = [
        migrations.CreateModel(
            name="RollupState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("time_zone", models.CharField(max_length=64)),
                ("rebuilt_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name="DailyRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("count", models.PositiveIntegerField()),
                ("total", models.FloatField()),
                ("low", models.FloatField()),
                ("high", models.FloatField()),
                (
                    "measure",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="measures.measure",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["measure", "day", "count", "total"], name="measures_rollup_dashboard"
                    )
                ],
                "constraints": [models.UniqueConstraint(fields=("measure", "day"), name="unique_rollup_day")],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
