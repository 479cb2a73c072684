"""Engagement commands: stakeholders."""

from __future__ import annotations
