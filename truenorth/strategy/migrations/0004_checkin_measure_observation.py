"""A check-in on a target that tracks a Value measure points at the observation it recorded there."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('measures', '0004_evidence_append_only_and_unique'),
        ('strategy', '0003_archive_targets_append_only_observations'),
    ]

    operations = [
        migrations.AddField(
            model_name='checkin',
            name='measure_observation',
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name='+',
                to='measures.observation',
            ),
        ),
        migrations.AddField(
            model_name='checkin',
            name='idempotency_key',
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddConstraint(
            model_name='checkin',
            constraint=models.UniqueConstraint(
                condition=models.Q(('idempotency_key', ''), _negated=True),
                fields=('goal', 'idempotency_key'),
                name='unique_checkin_idempotency_key',
            ),
        ),
    ]
