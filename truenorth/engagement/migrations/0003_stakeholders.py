# The stakeholders part of Engagement (a slot of its own; see models/__init__.py).

import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('engagement', '0002_notification_moves_to_notifications'),
        ('orgs', '0001_initial'),
        ('strategy', '0004_checkin_measure_observation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Stakeholder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('email', models.CharField(blank=True, default='', max_length=254)),
                ('title', models.CharField(blank=True, default='', max_length=200)),
                ('company', models.CharField(blank=True, default='', max_length=200)),
                ('department', models.CharField(choices=[('leadership', 'Leadership'), ('product', 'Product'), ('engineering', 'Engineering'), ('design', 'Design'), ('sales', 'Sales'), ('marketing', 'Marketing'), ('support', 'Support'), ('legal', 'Legal'), ('security', 'Security'), ('finance', 'Finance'), ('operations', 'Operations'), ('customers', 'Customers'), ('partners', 'Partners'), ('other', 'Other')], default='other', max_length=20)),
                ('influence', models.PositiveSmallIntegerField(default=3)),
                ('interest', models.PositiveSmallIntegerField(default=3)),
                ('current_engagement', models.CharField(choices=[('unaware', 'Unaware'), ('resistant', 'Resistant'), ('neutral', 'Neutral'), ('supportive', 'Supportive'), ('leading', 'Leading')], default='neutral', max_length=20)),
                ('desired_engagement', models.CharField(choices=[('unaware', 'Unaware'), ('resistant', 'Resistant'), ('neutral', 'Neutral'), ('supportive', 'Supportive'), ('leading', 'Leading')], default='supportive', max_length=20)),
                ('notes', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('archived_at', models.DateTimeField(blank=True, null=True)),
                ('version', models.PositiveIntegerField(default=1)),
                ('goals', models.ManyToManyField(blank=True, related_name='stakeholders', to='strategy.goal')),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='stakeholders', to='orgs.organisation')),
                ('products', models.ManyToManyField(blank=True, related_name='stakeholders', to='strategy.product')),
                ('relationship_owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ('name', 'id'),
            },
        ),
        migrations.CreateModel(
            name='EngagementLogEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('occurred_on', models.DateField()),
                ('kind', models.CharField(choices=[('meeting', 'Meeting'), ('review', 'Review'), ('demo', 'Demo'), ('message', 'Message'), ('call', 'Call'), ('workshop', 'Workshop'), ('other', 'Other')], default='meeting', max_length=20)),
                ('summary', models.CharField(max_length=300)),
                ('notes', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('goals', models.ManyToManyField(blank=True, related_name='engagement_log_entries', to='strategy.goal')),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='engagement_log', to='orgs.organisation')),
                ('recorded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('stakeholders', models.ManyToManyField(related_name='log_entries', to='engagement.stakeholder')),
            ],
            options={
                'ordering': ('-occurred_on', '-id'),
            },
        ),
        migrations.AddConstraint(
            model_name='stakeholder',
            constraint=models.UniqueConstraint(models.F('organisation'), django.db.models.functions.text.Lower('email'), condition=models.Q(('email', ''), _negated=True), name='engagement_stakeholder_email_unique', violation_error_message='A stakeholder with this e-mail address already exists.'),
        ),
        migrations.AddConstraint(
            model_name='stakeholder',
            constraint=models.CheckConstraint(condition=models.Q(('influence__gte', 1), ('influence__lte', 5)), name='engagement_stakeholder_influence_1_5'),
        ),
        migrations.AddConstraint(
            model_name='stakeholder',
            constraint=models.CheckConstraint(condition=models.Q(('interest__gte', 1), ('interest__lte', 5)), name='engagement_stakeholder_interest_1_5'),
        ),
        migrations.AddIndex(
            model_name='engagementlogentry',
            index=models.Index(fields=['organisation', 'occurred_on'], name='engagement_log_org_day'),
        ),
    ]
