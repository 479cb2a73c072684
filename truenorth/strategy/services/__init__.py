"""Vision services (being split by workflow): everything callers use is re-exported here."""

from truenorth.strategy.services.collaboration import *  # noqa: F403
from truenorth.strategy.services.collaboration import member_by_email, require_writer  # noqa: F401
