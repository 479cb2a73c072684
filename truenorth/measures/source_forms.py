"""Forms of the data source pages and of SQL measures (admins): they parse and type the input; every
rule is checked by measures.sources and measures.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from truenorth.core.forms import Choices, VersionField, set_choices
from truenorth.measures.models import KVA, DataSourceKind, MeasureDirection
from truenorth.measures.sources._common import MASK

# --- data sources and SQL measures (admins) -------------------------------------------------------


#: The settings fields each kind's form shows (the others are hidden on its page).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    DataSourceKind.DUCKDB: ("path", "files"),
    DataSourceKind.POSTGRES: ("dsn",),
    DataSourceKind.SPARK: ("url", "master", "tables", "database"),
    DataSourceKind.CHDB: ("tables",),
    DataSourceKind.CLICKHOUSE: ("url", "username", "password", "database"),
    DataSourceKind.TRINO: ("driver", "params"),
    DataSourceKind.BIGQUERY: ("driver", "params"),
    DataSourceKind.SNOWFLAKE: ("driver", "params"),
}
SETTING_FIELDS = tuple(dict.fromkeys(name for names in KIND_FIELDS.values() for name in names))
_CODE = {"autocomplete": "off", "spellcheck": "false"}


def _pairs(text: str, field: str) -> dict[str, str]:
    """`name = value` lines (blank lines skipped) as a dict; a line without "=" is a field error."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise forms.ValidationError(f"Line {number}: write name = value.", code=field)
        out[key.strip()] = value.strip()
    return out


def _scalar(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.isdigit() and len(value) < 10:
        return int(value)
    return value


class DataSourceForm(forms.Form):
    """A data source's name, kind and settings (only the chosen kind's fields are used). Paths are
    relative to the organisation's directory; secrets are write-only: a PostgreSQL address is edited
    with its password masked (sources.MASK), a password field left empty keeps the stored one."""

    name = forms.CharField(max_length=120, label="Name")
    kind = forms.ChoiceField(choices=DataSourceKind.choices, label="Kind")
    path = forms.CharField(
        max_length=1000,
        required=False,
        label="DuckDB file",
        help_text="DuckDB: a .duckdb file in the organisation's directory (relative to it); empty: no "
        "database file, only the files below.",
    )
    # Named as the services' error field; Django moves declared fields off the class, so `form.files`
    # (uploads) is untouched.
    files = forms.CharField(  # type: ignore[assignment]
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=20_000,
        required=False,
        label="Parquet and CSV files or directories",
        help_text="DuckDB: one path a line, relative to the organisation's directory; the query reads "
        "them, e.g. read_parquet('sales.parquet').",
    )
    dsn = forms.CharField(
        max_length=2000,
        required=False,
        label="PostgreSQL address",
        help_text="postgres://user:password@host:5432/database, for a role that can only read.",
        widget=forms.TextInput(attrs=_CODE),
    )
    url = forms.CharField(
        max_length=2000,
        required=False,
        label="Engine address",
        help_text="Spark Connect: sc://host:15002 (a token as /;token=…); ClickHouse: https://host:8443.",
        widget=forms.TextInput(attrs=_CODE),
    )
    master = forms.CharField(
        max_length=20,
        required=False,
        label="Spark local session",
        help_text="Spark without an address: local[2] runs Spark inside TrueNorth's worker (only when the "
        "operator allows local engines).",
    )
    tables = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, **_CODE}),
        max_length=20_000,
        required=False,
        label="Tables",
        help_text="Spark and chDB: one table a line, name = Parquet or CSV file (or directory) relative to "
        "the organisation's directory, e.g. events = events.parquet.",
    )
    username = forms.CharField(max_length=200, required=False, label="User name", help_text="ClickHouse.")
    password = forms.CharField(
        max_length=1000,
        required=False,
        strip=False,
        label="Password",
        help_text="ClickHouse. Write-only: never shown; leave empty to keep the stored one.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    database = forms.CharField(
        max_length=128, required=False, label="Database", help_text="Spark or ClickHouse (optional)."
    )
    driver = forms.ChoiceField(
        required=False,
        label="Driver",
        help_text="Trino, BigQuery, Snowflake: a DB-API driver the operator installed and offers.",
    )
    params = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, **_CODE}),
        max_length=20_000,
        required=False,
        label="Driver parameters",
        help_text="One a line, name = value (e.g. host = trino.example.com). Secrets show as ********: "
        "leave them so to keep the stored ones.",
    )
    timeout_seconds = forms.IntegerField(
        min_value=1, max_value=600, initial=30, label="Time limit (seconds)", help_text="Per query."
    )
    version = VersionField(required=False)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        offered = sorted(getattr(settings, "TRUENORTH_ENGINES_DRIVERS", []) or [])
        set_choices(self.fields["driver"], [("", "—"), *((name, name) for name in offered)])

    def clean_tables(self) -> str:
        text: str = self.cleaned_data.get("tables", "")
        _pairs(text, "tables")
        return text

    def clean_params(self) -> str:
        text: str = self.cleaned_data.get("params", "")
        _pairs(text, "params")
        return text

    def config(self) -> dict[str, Any]:
        """The settings of the chosen kind, as the services take them."""
        data = self.cleaned_data
        kind = data["kind"]
        if kind == DataSourceKind.POSTGRES:
            return {"dsn": data["dsn"]}
        if kind == DataSourceKind.DUCKDB:
            files = [line.strip() for line in data["files"].splitlines() if line.strip()]
            return {"path": data["path"].strip(), "files": files}
        if kind == DataSourceKind.CHDB:
            return {"tables": _pairs(data["tables"], "tables")}
        if kind == DataSourceKind.SPARK:
            config: dict[str, Any] = {"tables": _pairs(data["tables"], "tables")}
            if data["url"].strip():
                config["url"] = data["url"].strip()
            if data["master"].strip():
                config["master"] = data["master"].strip()
            if data["database"].strip():
                config["database"] = data["database"].strip()
            return config
        if kind == DataSourceKind.CLICKHOUSE:
            password = data["password"] or (MASK if self.editing else "")
            return {
                "url": data["url"].strip(),
                "username": data["username"].strip(),
                "password": password,
                "database": data["database"].strip(),
            }
        params = {key: _scalar(value) for key, value in _pairs(data["params"], "params").items()}
        return {"driver": data["driver"], "params": params}

    def config_changed(self) -> bool:
        return any(name in self.changed_data for name in SETTING_FIELDS)


class SqlMeasureForm(forms.Form):
    """A measure fed by a SQL query on a data source (admins write the query)."""

    name = forms.CharField(max_length=120, label="Name")
    kva = forms.ChoiceField(choices=KVA.choices, label="Key Value Area")
    unit = forms.CharField(max_length=30, required=False, label="Unit")
    direction = forms.ChoiceField(choices=MeasureDirection.choices, label="Direction")
    cadence_days = forms.IntegerField(min_value=1, max_value=3660, initial=1, label="Refresh every (days)")
    data_source = forms.ChoiceField(label="Data source")
    query = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"}),
        max_length=20_000,
        label="Query",
        help_text="One SELECT returning two columns: a timestamp or date, and a number; one row per "
        "observation.",
    )
    target = forms.FloatField(required=False, label="Target")

    def __init__(self, *args: Any, sources: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["data_source"], sources)


class QueryForm(forms.Form):
    """A SQL measure's data source and query (the query editor); "preview" runs it without saving."""

    data_source = forms.ChoiceField(label="Data source")
    query = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
        max_length=20_000,
        label="Query",
        help_text="One SELECT returning two columns: a timestamp or date, and a number.",
    )
    version = VersionField(required=False)

    def __init__(self, *args: Any, sources: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["data_source"], sources)
