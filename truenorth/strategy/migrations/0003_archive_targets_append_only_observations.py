"""Target measures are archived, never deleted; their observations are append-only in the database
(UPDATE and DELETE refused on SQLite and PostgreSQL, TRUNCATE on PostgreSQL; issue 8, item 7)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from truenorth.core.append_only import protect


class Migration(migrations.Migration):

    dependencies = [
        ('strategy', '0002_targetmeasure_measure'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='targetmeasure',
            name='archived_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='targetobservation',
            name='recorded_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='targetobservation',
            name='target_measure',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='observations', to='strategy.targetmeasure'),
        ),
        protect("strategy_targetobservation", "target observations are append-only"),
    ]
