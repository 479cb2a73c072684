"""Signal receivers of the Engagement pillar (connected in EngagementConfig.ready())."""

from __future__ import annotations
