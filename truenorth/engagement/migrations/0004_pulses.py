# The pulses part of Engagement (a slot of its own; see models/__init__.py).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import truenorth.engagement.models.pulses


class Migration(migrations.Migration):

    dependencies = [
        ('engagement', '0003_stakeholders'),
        ('orgs', '0001_initial'),
        ('strategy', '0004_checkin_measure_observation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Pulse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('title', models.CharField(max_length=200)),
                ('cadence_days', models.PositiveSmallIntegerField(default=0)),
                ('open_days', models.PositiveSmallIntegerField(default=7)),
                ('next_run_at', models.DateTimeField(blank=True, null=True)),
                ('active', models.BooleanField(default=True)),
                ('all_members', models.BooleanField(default=True)),
                ('include_stakeholders', models.BooleanField(default=True)),
                ('min_group_size', models.PositiveSmallIntegerField(default=truenorth.engagement.models.pulses.default_min_group_size)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('version', models.PositiveIntegerField(default=1)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('members', models.ManyToManyField(blank=True, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='pulses', to='orgs.organisation')),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='pulses', to='strategy.product')),
            ],
            options={
                'ordering': ('title', 'id'),
            },
        ),
        migrations.CreateModel(
            name='PulseRound',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('goal_statement', models.TextField(blank=True)),
                ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('closes_at', models.DateTimeField()),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('pulse', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rounds', to='engagement.pulse')),
            ],
            options={
                'ordering': ('pulse', 'number'),
            },
        ),
        migrations.CreateModel(
            name='PulseResponse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('group', models.CharField(blank=True, max_length=120)),
                ('own_words', models.TextField()),
                ('clarity', models.PositiveSmallIntegerField()),
                ('commitment', models.PositiveSmallIntegerField()),
                ('contribution', models.TextField(blank=True)),
                ('similarity', models.FloatField(default=0.0)),
                ('submitted_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('contribution_goal', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='strategy.goal')),
                ('round', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='responses', to='engagement.pulseround')),
            ],
            options={
                'ordering': ('round', 'id'),
            },
        ),
        migrations.CreateModel(
            name='PulseInvitation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token_hash', models.CharField(max_length=64, unique=True)),
                ('email', models.EmailField(blank=True, max_length=254)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('expires_at', models.DateTimeField()),
                ('used_at', models.DateTimeField(blank=True, null=True)),
                ('stakeholder', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='engagement.stakeholder')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('round', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='engagement.pulseround')),
            ],
            options={
                'ordering': ('round', 'id'),
            },
        ),
        migrations.AddIndex(
            model_name='pulse',
            index=models.Index(fields=['active', 'next_run_at'], name='engagement_pulse_due'),
        ),
        migrations.AddConstraint(
            model_name='pulse',
            constraint=models.CheckConstraint(condition=models.Q(('open_days__gte', 1)), name='pulse_open_days_positive'),
        ),
        migrations.AddConstraint(
            model_name='pulse',
            constraint=models.CheckConstraint(condition=models.Q(('min_group_size__gte', 1)), name='pulse_min_group_positive'),
        ),
        migrations.AddConstraint(
            model_name='pulseround',
            constraint=models.UniqueConstraint(fields=('pulse', 'number'), name='unique_pulse_round_number'),
        ),
        migrations.AddConstraint(
            model_name='pulseresponse',
            constraint=models.CheckConstraint(condition=models.Q(('clarity__gte', 1), ('clarity__lte', 5)), name='pulse_response_clarity_1_5'),
        ),
        migrations.AddConstraint(
            model_name='pulseresponse',
            constraint=models.CheckConstraint(condition=models.Q(('commitment__gte', 1), ('commitment__lte', 5)), name='pulse_response_commitment_1_5'),
        ),
        migrations.AddConstraint(
            model_name='pulseresponse',
            constraint=models.CheckConstraint(condition=models.Q(('similarity__gte', 0), ('similarity__lte', 1)), name='pulse_response_similarity_0_1'),
        ),
        migrations.AddConstraint(
            model_name='pulseinvitation',
            constraint=models.UniqueConstraint(condition=models.Q(('user__isnull', False)), fields=('round', 'user'), name='unique_pulse_invite_user'),
        ),
        migrations.AddConstraint(
            model_name='pulseinvitation',
            constraint=models.UniqueConstraint(condition=models.Q(('email', ''), _negated=True), fields=('round', 'email'), name='unique_pulse_invite_email'),
        ),
    ]
