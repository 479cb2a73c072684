"""The search index: entries for every existing object, and the database's full-text index over them
(SQLite FTS5 table and triggers, or a PostgreSQL generated tsvector with a GIN index)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from truenorth.search import documents, index_sql


def install_index(apps, schema_editor):
    index_sql.install(schema_editor.connection)


def drop_index(apps, schema_editor):
    index_sql.drop(schema_editor.connection)


def build_entries(apps, schema_editor):
    models_ = {
        "goal": apps.get_model("strategy", "Goal"),
        "measure": apps.get_model("measures", "Measure"),
        "hypothesis": apps.get_model("hypotheses", "Hypothesis"),
        "experiment": apps.get_model("hypotheses", "Experiment"),
        "work_item": apps.get_model("strategy", "WorkItem"),
        "decision": apps.get_model("hypotheses", "Decision"),
    }
    documents.build_all(apps.get_model("search", "SearchEntry"), models_)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('orgs', '0001_initial'),
        ('strategy', '0003_archive_targets_append_only_observations'),
        ('measures', '0004_evidence_append_only_and_unique'),
        ('hypotheses', '0003_snapshot_kind_author_append_only'),
    ]

    operations = [
        migrations.CreateModel(
            name='SearchEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('goal', 'Goal'), ('measure', 'Measure'), ('hypothesis', 'Hypothesis'), ('experiment', 'Experiment'), ('work_item', 'Work item'), ('learning', 'Learning')], max_length=20)),
                ('object_id', models.PositiveBigIntegerField()),
                ('parent_id', models.PositiveBigIntegerField(blank=True, null=True)),
                ('title', models.CharField(max_length=300)),
                ('body', models.TextField(blank=True)),
                ('archived', models.BooleanField(default=False)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organisation')),
            ],
            options={
                'indexes': [models.Index(fields=['organisation', 'kind'], name='search_sear_organis_59aa61_idx')],
                'constraints': [models.UniqueConstraint(fields=('kind', 'object_id'), name='unique_search_entry')],
            },
        ),
        migrations.RunPython(install_index, drop_index),
        migrations.RunPython(build_entries, migrations.RunPython.noop),
    ]
