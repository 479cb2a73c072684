"""URL converters shared by every app."""

from __future__ import annotations


class ObjectIdConverter:
    """A database id in a URL: 1 to 18 digits, so it always fits a 64-bit integer column."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
