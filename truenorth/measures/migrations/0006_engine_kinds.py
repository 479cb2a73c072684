# Slot for issue 14: data source kinds for the new engines (owner: the sources-wiring helper).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("measures", "0005_daily_rollups")]
    operations: list[migrations.operations.base.Operation] = []
