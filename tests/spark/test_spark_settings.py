"""BOUNCEHOUSE_ENGINE and what Spark needs of BOUNCEHOUSE_LAKE: one clear line when it is wrong, before
anything starts; and `make run` on Spark finds a lake folder under data/ by itself. No Spark here."""

from __future__ import annotations

from pathlib import Path

import pytest
from bouncehouse.airflow_run import airflow_env
from bouncehouse.config import load_settings
from bouncehouse.errors import ConfigError
from bouncehouse.spark import lake_folder, spark_conf, spark_dir


def test_engine_defaults_to_duckdb_and_reads_spark_in_any_case() -> None:
    assert load_settings(env={}).engine == "duckdb"
    assert load_settings(env={"BOUNCEHOUSE_ENGINE": " Spark "}).engine == "spark"


def test_an_unknown_engine_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={"BOUNCEHOUSE_ENGINE": "presto"})
    assert str(error.value) == "BOUNCEHOUSE_ENGINE must be one of duckdb, spark, got 'presto'"


def test_spark_without_a_lake_says_to_set_one() -> None:
    settings = load_settings(env={"BOUNCEHOUSE_ENGINE": "spark"})
    with pytest.raises(ConfigError, match="set BOUNCEHOUSE_LAKE"):
        lake_folder(settings)


def test_spark_here_cannot_read_an_s3_lake_and_says_why() -> None:
    settings = load_settings(env={"BOUNCEHOUSE_ENGINE": "spark", "BOUNCEHOUSE_LAKE": "s3://bucket/lake"})
    with pytest.raises(ConfigError, match="no S3 connector"):
        lake_folder(settings)


def test_spark_keeps_its_tables_beside_the_warehouse_in_a_utc_session(tmp_path: Path) -> None:
    settings = load_settings({"warehouse": str(tmp_path / "w" / "b.duckdb")}, env={})
    assert spark_dir(settings) == (tmp_path / "w" / "b.spark").resolve()
    conf = spark_conf(settings)
    assert conf["spark.sql.warehouse.dir"] == str((tmp_path / "w" / "b.spark" / "warehouse").resolve())
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.catalogImplementation"] == "in-memory"


def test_make_run_on_spark_puts_the_lake_under_data_unless_told(tmp_path: Path) -> None:
    env = airflow_env({"BOUNCEHOUSE_ENGINE": "spark", "PATH": ""}, root=tmp_path)
    assert env["BOUNCEHOUSE_LAKE"] == str(tmp_path / "data" / "lake")
    told = airflow_env(
        {"BOUNCEHOUSE_ENGINE": "spark", "BOUNCEHOUSE_LAKE": "/elsewhere", "PATH": ""}, root=tmp_path
    )
    assert told["BOUNCEHOUSE_LAKE"] == "/elsewhere"
    assert "BOUNCEHOUSE_LAKE" not in airflow_env({"PATH": ""}, root=tmp_path)
