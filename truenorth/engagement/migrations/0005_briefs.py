# The briefs part of Engagement (a slot of its own; see models/__init__.py).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('engagement', '0004_pulses'),
    ]

    operations: list[migrations.operations.base.Operation] = []
