"""Settings: sso (issue 13). Read from the environment with truenorth.env helpers."""

from __future__ import annotations
