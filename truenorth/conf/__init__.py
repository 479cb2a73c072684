"""Settings by concern, star-imported at the end of truenorth/settings.py (each reads the environment
through truenorth.env, like the rest of the settings; see docs/operations.md, "Configuration")."""
