# Slot for issue 13 (single sign-on); filled in by its owner.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_two_factor")]

    operations: list[migrations.operations.base.Operation] = []
