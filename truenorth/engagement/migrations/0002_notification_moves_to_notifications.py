# In-app notifications moved to the notifications app (notifications/0001 took over the model and its
# table, engagement_notification): remove the model from engagement's state only; the table and its rows
# stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('engagement', '0001_initial'),
        ('notifications', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Notification')],
            database_operations=[],
        ),
    ]
