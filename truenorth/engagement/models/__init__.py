"""The Engagement pillar's models, one module per part (notifications live in truenorth/notifications).

Each part's migration has its own slot in migrations/ (0003_stakeholders … 0009_activity), chained in
this order, so the parts could be built side by side."""

from truenorth.engagement.models.activity import *  # noqa: F403
from truenorth.engagement.models.briefs import *  # noqa: F403
from truenorth.engagement.models.health import *  # noqa: F403
from truenorth.engagement.models.mail import *  # noqa: F403
from truenorth.engagement.models.pulses import *  # noqa: F403
from truenorth.engagement.models.stakeholders import *  # noqa: F403
from truenorth.engagement.models.webhooks import *  # noqa: F403
