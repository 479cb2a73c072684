"""Engagement background work: stakeholders."""

from __future__ import annotations
