from __future__ import annotations

import pytest

from truenorth.core.errors import TooManyRequests
from truenorth.engagement.services import throttle


def test_hits_over_the_limit_are_refused_per_scope_and_key() -> None:
    throttle.reset("t", "a")
    throttle.reset("t", "b")
    for _ in range(3):
        throttle.hit("t", "a", limit=3, window=60)
    with pytest.raises(TooManyRequests):
        throttle.hit("t", "a", limit=3, window=60)
    throttle.hit("t", "b", limit=3, window=60)  # another key has its own count
    throttle.reset("t", "a")
    throttle.hit("t", "a", limit=3, window=60)
