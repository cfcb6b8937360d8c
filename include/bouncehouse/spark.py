"""Spark for ``transform`` when ``BOUNCEHOUSE_ENGINE=spark``: the same dbt project built by dbt-spark
(``method: session``, Spark ``local[*]`` in this process) from the Parquet lake (``BOUNCEHOUSE_LAKE``).

dbt-spark's session method calls ``SparkSession.builder.enableHiveSupport().getOrCreate()``: the session
made here first (``session``) is the one it uses, and with it this configuration: the in-memory catalog (no
Hive metastore or Derby folder; it lives as long as the process), the session time zone UTC (the warehouse's
timestamps are naive UTC), raw string literals (as DuckDB's, so one regular expression serves both engines).
Before each build ``register_lake`` makes every raw table of the lake a view ``raw.<table>`` over its
Parquet files (Hive partitions: ``day`` from the path), so the dbt sources resolve as on DuckDB, and drops
the previous build's models. After it, ``export_marts`` copies what dbt built into the DuckDB warehouse
(``main.<model>``), so the digest, prune and analysts read Spark's results where they read DuckDB's.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse import lake as lake_module
from bouncehouse import warehouse
from bouncehouse.config import Settings
from bouncehouse.errors import ConfigError

log = logging.getLogger(__name__)

DBT_TARGET = "spark"
# The database dbt builds in (profiles.yml: schema main, as on DuckDB) and the one the lake's views are in.
MODELS_DATABASE = "main"
RAW_DATABASE = warehouse.RAW_SCHEMA
# Columns the DuckDB warehouse holds as json (Spark has text): the digest reads them with to_json().
JSON_COLUMNS = ("tags",)
# The relations copied back into the DuckDB warehouse: the marts, and the intermediate model prune reads.
EXPORTED_VIEWS = ("int_recipient_events_classified",)


def spark_conf(settings: Settings) -> dict[str, str]:
    """The session's configuration (static settings only take effect when the session is created)."""
    return {
        "spark.master": "local[*]",
        "spark.app.name": "bouncehouse",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(spark_dir(settings) / "warehouse"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parser.escapedStringLiterals": "true",
        # DuckDB's TIMESTAMP (naive UTC) read as Spark's TIMESTAMP in the UTC session, not TIMESTAMP_NTZ.
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # dbt-spark's CREATE TABLE AS has no USING clause: Parquet, not a Hive table.
        "spark.sql.legacy.createHiveTableByDefault": "false",
        # A demo-sized build has a few MB per stage: 200 shuffle partitions would be 200 tasks of nothing.
        "spark.sql.shuffle.partitions": "2",
        # Builds are many small queries: compiling each plan to Java costs more than it saves, and so
        # does the JVM's optimising JIT (C2) on a machine of two cores.
        "spark.sql.codegen.wholeStage": "false",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def spark_dir(settings: Settings) -> Path:
    """Spark's folder beside the warehouse (``<warehouse>.spark/``): the models' Parquet tables."""
    path = Path(settings.warehouse).resolve()
    return path.with_name(path.stem + ".spark")


def lake_folder(settings: Settings) -> Path:
    """The lake as a local folder; Spark here has no S3 connector (no hadoop-aws jar)."""
    if not settings.lake:
        raise ConfigError(
            "BOUNCEHOUSE_ENGINE=spark builds from the lake: set BOUNCEHOUSE_LAKE to the folder ingest writes"
        )
    if settings.lake.startswith("s3://"):
        raise ConfigError(
            f"BOUNCEHOUSE_ENGINE=spark reads a lake folder here, not {settings.lake}: local Spark has no S3 "
            "connector (hadoop-aws); use a folder, or a cluster profile whose Spark reads s3://"
        )
    return Path(settings.lake)


def session(settings: Settings) -> Any:
    """The process's SparkSession (created with ``spark_conf`` if there is none yet)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _duckdb_columns(table: str) -> list[tuple[str, str]]:
    """The raw table's columns as the warehouse defines them (warehouse.RAW_DDL, in memory)."""
    con = duckdb.connect()
    try:
        con.execute(warehouse.RAW_DDL)
        rows = con.execute(f"describe {RAW_DATABASE}.{table}").fetchall()
    finally:
        con.close()
    return [(name, kind) for name, kind, *_ in rows]


def _spark_type(duckdb_type: str) -> str:
    kind = duckdb_type.upper()
    return {"VARCHAR": "string", "JSON": "string", "INTEGER": "int", "DOUBLE": "double"}.get(
        kind, kind.lower()
    )


def _empty_select(table: str) -> str:
    """No rows, with the table's columns (and ``day``): a table the lake holds no file of yet."""
    columns = [f"cast(null as {_spark_type(kind)}) as {name}" for name, kind in _duckdb_columns(table)]
    if table in lake_module.TABLES and lake_module.TABLES[table].day is not None:
        columns.append("cast(null as date) as day")
    return f"select {', '.join(columns)} where false"


def register_lake(spark: Any, folder: Path) -> dict[str, int]:
    """Make ``raw.<table>`` a view over each lake table's Parquet files; drop the previous build's models.

    Returns the number of files per table."""
    spark.sql(f"drop database if exists {MODELS_DATABASE} cascade")
    shutil.rmtree(_warehouse_dir(spark) / f"{MODELS_DATABASE}.db", ignore_errors=True)
    spark.sql(f"create database if not exists {RAW_DATABASE}")
    files: dict[str, int] = {}
    for table in lake_module.TABLES:
        root = folder / table
        files[table] = sum(1 for _ in root.glob("day=*/*.parquet"))
        body = (
            f"select * from parquet.`{root.resolve().as_posix()}`" if files[table] else _empty_select(table)
        )
        spark.sql(f"create or replace view {RAW_DATABASE}.{table} as {body}")
    log.info("spark: lake %s registered (%s)", folder, ", ".join(f"{t} {n} files" for t, n in files.items()))
    return files


def _warehouse_dir(spark: Any) -> Path:
    """The session's warehouse folder (fixed when the process's first session was created)."""
    return Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))


def _exported_relations(spark: Any) -> list[str]:
    tables = [row.tableName for row in spark.sql(f"show tables in {MODELS_DATABASE}").collect()]
    built = [name for name in tables if not name.startswith("stg_")]
    return sorted(name for name in built if name in EXPORTED_VIEWS or _is_table(spark, name))


def _is_table(spark: Any, name: str) -> bool:
    return spark.catalog.getTable(f"{MODELS_DATABASE}.{name}").tableType != "VIEW"


def export_marts(spark: Any, settings: Settings) -> dict[str, int]:
    """Copy the models Spark built into the DuckDB warehouse (``main.<name>``, replaced); rows per model.

    Timestamps come back naive UTC and ``tags`` as json, as the DuckDB build makes them."""
    staging = spark_dir(settings) / "export"
    shutil.rmtree(staging, ignore_errors=True)
    names = _exported_relations(spark)
    for name in names:
        spark.table(f"{MODELS_DATABASE}.{name}").write.parquet(str(staging / name))
    rows: dict[str, int] = {}
    with warehouse.writer(settings) as con, warehouse.transaction(con):
        for name in names:
            files = (staging / name).as_posix() + "/*.parquet"
            described = con.execute(f"describe select * from read_parquet('{files}')").fetchall()
            select = ", ".join(_duckdb_column(column, kind) for column, kind, *_ in described)
            _drop_main_relation(con, name)
            con.execute(f"create table main.{name} as select {select} from read_parquet('{files}')")
            rows[name] = con.execute(f"select count(*) from main.{name}").fetchone()[0]
    shutil.rmtree(staging, ignore_errors=True)
    return rows


def _drop_main_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop ``main.<name>`` (a DuckDB build's table or view) before Spark's copy replaces it."""
    row = con.execute(
        "select table_type from information_schema.tables where table_schema = 'main' and table_name = ?",
        [name],
    ).fetchone()
    if row is not None:
        con.execute(f"drop {'view' if row[0] == 'VIEW' else 'table'} main.{name}")


def _duckdb_column(name: str, kind: str) -> str:
    if kind.upper() == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {name}) as {name}"
    if name in JSON_COLUMNS:
        return f"cast({name} as json) as {name}"
    return name
