# Slot for issue 13 (two-factor policy); filled in by its owner.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial")]

    operations: list[migrations.operations.base.Operation] = []
