# Slot reserved for this part of issue 12 (filled in by its owner; empty until then).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0002_github_api"),
    ]

    operations: list[migrations.operations.base.Operation] = []
