"""Give every organisation that existed before the catalogue its EBM example measures (idempotent)."""

from django.db import migrations


def seed(apps, schema_editor):
    from truenorth.measures.catalogue import CATALOGUE

    Organisation = apps.get_model("orgs", "Organisation")
    CatalogueMeasure = apps.get_model("measures", "CatalogueMeasure")
    for org in Organisation.objects.all().iterator():
        have = set(CatalogueMeasure.objects.filter(organisation=org).values_list("key", flat=True))
        CatalogueMeasure.objects.bulk_create(
            [
                CatalogueMeasure(
                    organisation=org,
                    key=e.key,
                    name=e.name,
                    kva=e.kva,
                    description=e.description,
                    unit=e.unit,
                    direction=e.direction,
                )
                for e in CATALOGUE
                if e.key not in have
            ]
        )


class Migration(migrations.Migration):
    dependencies = [("measures", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
