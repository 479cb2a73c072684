"""Delivery importers: each turns one input into a stream of records (`base`), registered by name.

`registry` maps a name to an importer; the built-ins below register themselves exactly as a third
party would (`registry[importer.name] = importer`). See docs/delivery.md, "Importers".
"""

from __future__ import annotations

from truenorth.delivery.importers import azure, events, git, github, jira  # noqa: F401  (each registers itself)
from truenorth.delivery.importers._common import UnreadableInput
from truenorth.delivery.importers.base import BadRecord, Importer, Record, register, registry

__all__ = ["BadRecord", "Importer", "Record", "UnreadableInput", "register", "registry"]
