"""Database backends TrueNorth configures itself (see settings.DATABASES)."""
