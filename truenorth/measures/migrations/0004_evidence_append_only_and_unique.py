"""Evidence is append-only and unique in the database (issue 8, items 7 and 8).

- Observations: UPDATE and DELETE refused (except a correction's `superseded` false → true), TRUNCATE
  refused on PostgreSQL (truenorth.core.append_only).
- At most one current observation per (measure, observed_at): a partial unique index. Duplicates that
  concurrent writers stored before it existed are kept but marked superseded (the first one stays
  current), so the index can be built.
- Batches store a hash of their rows: a reused idempotency key with other rows is refused (409).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from truenorth.core.append_only import protect


def supersede_duplicates(apps, schema_editor):
    """Keep the first current value per measure and time; later duplicates become superseded."""
    Observation = apps.get_model("measures", "Observation")
    duplicated = (
        Observation.objects.filter(superseded=False)
        .values("measure_id", "observed_at")
        .annotate(n=models.Count("id"), first=models.Min("id"))
        .filter(n__gt=1)
    )
    for row in duplicated.iterator():
        Observation.objects.filter(
            measure_id=row["measure_id"], observed_at=row["observed_at"], superseded=False
        ).exclude(pk=row["first"]).update(superseded=True)


class Migration(migrations.Migration):

    dependencies = [
        ('measures', '0003_dashboard_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='observationbatch',
            name='payload_hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='observation',
            name='measure',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='observations', to='measures.measure'),
        ),
        migrations.AlterField(
            model_name='observation',
            name='recorded_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(supersede_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='observation',
            constraint=models.UniqueConstraint(condition=models.Q(('superseded', False)), fields=('measure', 'observed_at'), name='unique_current_observation'),
        ),
        protect(
            "measures_observation",
            "observations are append-only: correct a value by superseding it",
            may_set="superseded",
        ),
    ]
