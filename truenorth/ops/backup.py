"""`truenorth backup` and `truenorth restore` (issue 13): the database with the keys that read its secrets."""

from __future__ import annotations
