# Slot for issue 13 (two-factor sign-in); filled in by its owner.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_sign_in_links_and_attempt_indexes")]

    operations: list[migrations.operations.base.Operation] = []
