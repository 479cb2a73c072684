"""Forms of the data source pages and of SQL measures (admins): they parse and type the input; every
rule is checked by measures.sources and measures.services."""

from __future__ import annotations

from typing import Any

from django import forms

from truenorth.core.forms import Choices, VersionField, set_choices
from truenorth.measures.models import KVA, DataSourceKind, MeasureDirection

# --- data sources and SQL measures (admins) -------------------------------------------------------


class DataSourceForm(forms.Form):
    """A data source's name, kind and settings. DuckDB paths are relative to the organisation's
    directory; a PostgreSQL address is edited with its password masked (sources.MASK)."""

    name = forms.CharField(max_length=120, label="Name")
    kind = forms.ChoiceField(choices=DataSourceKind.choices, label="Kind")
    path = forms.CharField(
        max_length=1000,
        required=False,
        label="DuckDB file",
        help_text="A .duckdb file in the organisation's directory (relative to it); empty: no database "
        "file, only the files below.",
    )
    # Named as the services' error field; Django moves declared fields off the class, so `form.files`
    # (uploads) is untouched.
    files = forms.CharField(  # type: ignore[assignment]
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=20_000,
        required=False,
        label="Parquet and CSV files or directories",
        help_text="One path a line, relative to the organisation's directory; the query reads them, e.g. "
        "read_parquet('sales.parquet').",
    )
    dsn = forms.CharField(
        max_length=2000,
        required=False,
        label="PostgreSQL address",
        help_text="postgres://user:password@host:5432/database, for a role that can only read.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    timeout_seconds = forms.IntegerField(
        min_value=1, max_value=600, initial=30, label="Time limit (seconds)", help_text="Per query."
    )
    version = VersionField(required=False)

    def config(self) -> dict[str, Any]:
        """The settings of the chosen kind, as the services take them."""
        data = self.cleaned_data
        if data["kind"] == DataSourceKind.POSTGRES:
            return {"dsn": data["dsn"]}
        files = [line.strip() for line in data["files"].splitlines() if line.strip()]
        return {"path": data["path"].strip(), "files": files}

    def config_changed(self) -> bool:
        return any(name in self.changed_data for name in ("path", "files", "dsn"))


class SqlMeasureForm(forms.Form):
    """A measure fed by a SQL query on a data source (admins write the query)."""

    name = forms.CharField(max_length=120, label="Name")
    kva = forms.ChoiceField(choices=KVA.choices, label="Key Value Area")
    unit = forms.CharField(max_length=30, required=False, label="Unit")
    direction = forms.ChoiceField(choices=MeasureDirection.choices, label="Direction")
    cadence_days = forms.IntegerField(
        min_value=1, max_value=3660, initial=1, label="Refresh every (days)"
    )
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
