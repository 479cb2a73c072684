"""Data source kind → connector class (built-in ones and the ``truenorth.engines`` entry points).

Owner: the connector-core helper.
"""

from __future__ import annotations
