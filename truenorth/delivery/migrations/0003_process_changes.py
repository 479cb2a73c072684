# Process changes tested as experiments (issue 12, capability 7).

import datetime

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0002_github_api"),
        ("hypotheses", "0004_experiment_evidence_mapping"),
        ("jobs", "0001_jobs"),
        ("orgs", "0001_initial"),
        ("strategy", "0004_checkin_measure_observation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ProcessChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("title", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True)),
                ("changed_on", models.DateField()),
                ("before_days", models.PositiveSmallIntegerField(default=42)),
                ("after_days", models.PositiveSmallIntegerField(default=42)),
                ("comparison", models.JSONField(blank=True, default=dict)),
                ("computed_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("version", models.PositiveIntegerField(default=1)),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "hypothesis",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="process_changes",
                        to="hypotheses.hypothesis",
                    ),
                ),
                (
                    "job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="jobs.job",
                    ),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="process_changes",
                        to="orgs.organisation",
                    ),
                ),
                (
                    "product",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="process_changes",
                        to="strategy.product",
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="process_changes",
                        to="strategy.team",
                    ),
                ),
            ],
            options={
                "ordering": ("-changed_on", "-id"),
                "indexes": [
                    models.Index(
                        fields=["organisation", "product", "changed_on"],
                        name="delivery_pr_organis_7e1b08_idx",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("before_days__gte", 7), ("before_days__lte", 365)),
                        name="delivery_process_before_days_range",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("after_days__gte", 7), ("after_days__lte", 365)),
                        name="delivery_process_after_days_range",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("title", ""), _negated=True),
                        name="delivery_process_title_not_blank",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("changed_on__gte", datetime.date(1900, 1, 1)),
                            ("changed_on__lte", datetime.date(2200, 12, 31)),
                        ),
                        name="delivery_process_changed_on_sane",
                    ),
                ],
            },
        ),
    ]
