"""Delivery models, one module per part; Django finds them all here."""

from truenorth.delivery.models.base import *  # noqa: F403
from truenorth.delivery.models.branches import *  # noqa: F403
from truenorth.delivery.models.github import *  # noqa: F403
from truenorth.delivery.models.process import *  # noqa: F403
