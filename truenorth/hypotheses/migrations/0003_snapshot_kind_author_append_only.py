"""Result snapshots say whether TrueNorth computed them or someone imported them from an outside tool
(with author, tool and note), and the database refuses UPDATE, DELETE and (PostgreSQL) TRUNCATE of them
(issue 8, items 7 and 10).

Existing snapshots: the ones TrueNorth computed recorded a "created" history entry (results.py); they
stay computed, with that entry's actor as author. Every other one was posted through the API by hand
and becomes an unlabelled import, so it can no longer be the headline result.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from truenorth.core.append_only import protect

UNLABELLED = "unlabelled (posted before imports were labelled)"


def label_existing(apps, schema_editor):
    ResultSnapshot = apps.get_model("hypotheses", "ResultSnapshot")
    HistoryEntry = apps.get_model("history", "HistoryEntry")
    computed = {
        int(e["object_id"]): e
        for e in HistoryEntry.objects.filter(
            object_type="hypotheses.resultsnapshot", action="created"
        ).values("object_id", "actor_id", "actor_name")
    }
    User = apps.get_model(settings.AUTH_USER_MODEL)
    users = set(User.objects.filter(pk__in={e["actor_id"] for e in computed.values()}).values_list("pk", flat=True))
    for snap in ResultSnapshot.objects.all().iterator():
        entry = computed.get(snap.pk)
        if entry is not None:
            author = entry["actor_id"] if entry["actor_id"] in users else None
            fields = {"kind": "computed", "author_id": author, "author_name": entry["actor_name"]}
        else:
            fields = {"kind": "imported", "source_name": UNLABELLED, "author_name": "unknown"}
        ResultSnapshot.objects.filter(pk=snap.pk).update(**fields)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('hypotheses', '0002_experiment_evidence'),
        ('history', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='resultsnapshot',
            name='author',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='resultsnapshot',
            name='author_name',
            field=models.CharField(blank=True, max_length=254),
        ),
        migrations.AddField(
            model_name='resultsnapshot',
            name='kind',
            field=models.CharField(choices=[('computed', 'Computed by TrueNorth'), ('imported', 'Imported from an outside tool')], default='computed', max_length=20),
        ),
        migrations.AddField(
            model_name='resultsnapshot',
            name='note',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='resultsnapshot',
            name='source_name',
            field=models.CharField(blank=True, max_length=120),
        ),
        migrations.RunPython(label_existing, migrations.RunPython.noop),
        protect("hypotheses_resultsnapshot", "result snapshots are append-only"),
    ]
