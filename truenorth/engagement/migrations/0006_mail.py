# The mail part of Engagement (a slot of its own; see models/__init__.py).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('engagement', '0005_briefs'),
        ('orgs', '0001_initial'),
        ('strategy', '0004_checkin_measure_observation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Follow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('goal', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='strategy.goal')),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organisation')),
                ('product', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='strategy.product')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ('created_at', 'id'),
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('product__isnull', False), ('goal__isnull', True)), models.Q(('product__isnull', True), ('goal__isnull', False)), _connector='OR'), name='engagement_follow_one_target'), models.UniqueConstraint(condition=models.Q(('product__isnull', False)), fields=('user', 'organisation', 'product'), name='engagement_follow_product_unique'), models.UniqueConstraint(condition=models.Q(('goal__isnull', False)), fields=('user', 'organisation', 'goal'), name='engagement_follow_goal_unique')],
            },
        ),
        migrations.CreateModel(
            name='NotificationSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('checkin_reminders', models.BooleanField(default=True)),
                ('weekly_digest', models.BooleanField(default=True)),
                ('digest_weekday', models.PositiveSmallIntegerField(default=0)),
                ('version', models.PositiveIntegerField(default=1)),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organisation')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('user', 'organisation'), name='engagement_notification_settings_unique'), models.CheckConstraint(condition=models.Q(('digest_weekday__gte', 0), ('digest_weekday__lte', 6)), name='engagement_notification_settings_weekday')],
            },
        ),
        migrations.CreateModel(
            name='OutgoingEmail',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('to', models.CharField(max_length=254)),
                ('kind', models.CharField(choices=[('reminder', 'Check-in reminder'), ('digest', 'Weekly digest'), ('pulse', 'Alignment pulse'), ('brief', 'Product brief'), ('other', 'Other')], default='other', max_length=20)),
                ('subject', models.CharField(max_length=300)),
                ('text', models.TextField()),
                ('html', models.TextField(blank=True)),
                ('headers', models.JSONField(blank=True, default=dict)),
                ('dedupe_key', models.CharField(max_length=200)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed')], default='queued', max_length=20)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('organisation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organisation')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ('-created_at', '-id'),
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='engagement__status_5e7484_idx'), models.Index(fields=['organisation', 'user', 'kind', 'sent_at'], name='engagement__organis_37c2df_idx')],
                'constraints': [models.UniqueConstraint(fields=('organisation', 'dedupe_key'), name='engagement_email_dedupe')],
            },
        ),
    ]
