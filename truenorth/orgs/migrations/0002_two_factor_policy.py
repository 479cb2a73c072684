# Issue 13: an organisation may require two-factor sign-in of its members.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="organisation",
            name="require_two_factor",
            field=models.BooleanField(default=False),
        ),
    ]
