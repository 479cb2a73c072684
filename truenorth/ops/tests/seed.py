"""Test data for the backup tests, run in a subprocess against its own database and data directory.

`python -m truenorth.ops.tests.seed seed [--full]`: the demo's Vision and Value (`--full`: the whole demo),
then a webhook and a DuckDB data source, whose sealed secrets it prints as JSON.
`python -m truenorth.ops.tests.seed read`: the same secrets, decrypted with the instance's current keys
(null when they cannot be).
"""

from __future__ import annotations

import json
import os
import sys


def seed(full: bool) -> dict[str, object]:
    from django.db import transaction

    from truenorth import demo
    from truenorth.engagement.services.webhooks import create_webhook
    from truenorth.measures.demo import load_value_demo
    from truenorth.measures.sources.services import create_data_source
    from truenorth.orgs.models import Membership, Organisation
    from truenorth.orgs.services import create_organisation
    from truenorth.strategy.demo import load_vision_demo

    with transaction.atomic():
        if full:
            demo.load_demo()
            org = Organisation.objects.get(slug=demo.DEMO_ORG[1])
        else:
            users = {spec.email: demo._user(spec) for spec in demo.DEMO_USERS}
            org = create_organisation(users[demo.OWNER], "Backup Outdoor", "backup-outdoor")
            for spec in demo.DEMO_USERS[1:]:
                Membership.objects.create(organisation=org, user=users[spec.email], role=spec.role)
            load_vision_demo(org, users, demo.OWNER, demo.ADMIN, demo.MEMBER, demo.STAKEHOLDER)
            load_value_demo(org, users, demo.OWNER, demo.MEMBER)
        owner = Membership.objects.get(organisation=org, user__email=demo.OWNER)
        _, secret = create_webhook(owner, owner.user, name="Backup hook", url="https://hooks.example.com/in")
        create_data_source(
            owner, owner.user, name="Backup lake", kind="duckdb", config={"path": "backup-lake.duckdb"}
        )
    return {"webhook_secret": secret, **read()}


def read() -> dict[str, object]:
    from truenorth.engagement.models import Webhook
    from truenorth.measures.models import DataSource
    from truenorth.measures.sources import SourceUnavailable, decrypt_config, unseal

    source = DataSource.objects.get(name="Backup lake")
    try:
        config: object = decrypt_config(source)
    except SourceUnavailable:
        config = None
    return {
        "webhook_secret": unseal(Webhook.objects.get(name="Backup hook").secret_encrypted),
        "source_config": config,
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    import django

    django.setup()
    command = sys.argv[1]
    print(json.dumps(seed("--full" in sys.argv) if command == "seed" else read()))


if __name__ == "__main__":
    main()
