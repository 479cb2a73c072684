# Branches (active branches) and the deployment an incident names as its cause (issue 12, feed part).

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0003_process_changes"),
    ]

    operations = [
        migrations.CreateModel(
            name="Branch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("remote", models.BooleanField(default=False)),
                ("head_sha", models.CharField(blank=True, max_length=64)),
                ("last_commit_at", models.DateTimeField()),
                ("first_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
                (
                    "source",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="branches",
                        to="delivery.deliverysource",
                    ),
                ),
            ],
            options={
                "ordering": ("name", "id"),
                "indexes": [
                    models.Index(fields=["source", "last_commit_at"], name="delivery_br_source__218ee8_idx")
                ],
                "constraints": [models.UniqueConstraint(fields=("source", "name"), name="unique_branch")],
            },
        ),
        migrations.CreateModel(
            name="IncidentCause",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("deployment_external_id", models.CharField(max_length=100)),
                (
                    "incident",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="cause",
                        to="delivery.incident",
                    ),
                ),
                (
                    "source",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="delivery.deliverysource",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["source", "deployment_external_id"], name="delivery_in_source__281c18_idx"
                    )
                ],
            },
        ),
    ]
