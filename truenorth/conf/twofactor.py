"""Settings: two-factor sign-in (TOTP with recovery codes). Read from the environment with truenorth.env
helpers."""

from __future__ import annotations

from truenorth.env import env_int, env_str

# The name authenticator apps show next to the account (the otpauth URI's issuer).
TRUENORTH_TWO_FACTOR_ISSUER = env_str("TRUENORTH_TWO_FACTOR_ISSUER", "TrueNorth")
# Wrong authenticator or recovery codes allowed per account within the window before it must wait.
TRUENORTH_TWO_FACTOR_MAX_FAILURES = env_int("TRUENORTH_TWO_FACTOR_MAX_FAILURES", 5, minimum=1)
TRUENORTH_TWO_FACTOR_FAILURE_WINDOW_SECONDS = env_int(
    "TRUENORTH_TWO_FACTOR_FAILURE_WINDOW_SECONDS", 900, minimum=1
)
