# Slot for issue 13 (value dashboard roll-ups); filled in by its owner.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("measures", "0004_evidence_append_only_and_unique")]

    operations: list[migrations.operations.base.Operation] = []
