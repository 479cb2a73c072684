# Slot reserved for this part of issue 12 (filled in by its owner; empty until then).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0001_initial"),
    ]

    operations: list[migrations.operations.base.Operation] = []
