# Issue 14: data source kinds for the distributed engines (choices only; "clickhouse" fits max_length 20).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("measures", "0005_daily_rollups")]
    operations = [
        migrations.AlterField(
            model_name="datasource",
            name="kind",
            field=models.CharField(
                choices=[
                    ("duckdb", "DuckDB (embedded; DuckDB, Parquet and CSV files)"),
                    ("postgres", "PostgreSQL"),
                    ("spark", "Apache Spark (Spark Connect URL or local session; tested on a real engine)"),
                    ("chdb", "chDB (ClickHouse embedded; Parquet and CSV files; tested on a real engine)"),
                    ("clickhouse", "ClickHouse server (by URL; its SQL is tested through chDB)"),
                    ("trino", "Trino (compiled only; a driver the site installs)"),
                    ("bigquery", "BigQuery (compiled only; a driver the site installs)"),
                    ("snowflake", "Snowflake (compiled only; a driver the site installs)"),
                ],
                max_length=20,
            ),
        ),
    ]
