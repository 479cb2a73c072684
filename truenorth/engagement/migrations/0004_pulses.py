# The pulses part of Engagement (a slot of its own; see models/__init__.py).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('engagement', '0003_stakeholders'),
    ]

    operations: list[migrations.operations.base.Operation] = []
