"""Settings: evidence and measure queries on distributed engines (issue 14; docs/operations.md).

Owner: the sources-wiring helper. Every setting here is read from the environment with a safe default.
"""

from __future__ import annotations
