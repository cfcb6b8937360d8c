"""The same dbt project on DuckDB and on Spark (issue 12): one landing (the demo generator's data and the
real-sample corpus) ingested once with the lake on, built on both (tests/spark/conftest.py). The three
marts of the contract come out identical row by row, every column compared after only a normalisation of
types (a timestamp is a naive UTC datetime, a count an int, tags parsed JSON, a list sorted); rates are
compared exactly, as both engines divide the same integers. dbt's data and unit tests ran in both builds
(transform fails on any failing one); the Spark build's counts say how many."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

MARTS = ("message_status", "suppression_list", "deliverability_daily")


def normalised(value: Any, column: str) -> Any:
    """One value in the form both engines' values are compared in."""
    if value is None:
        return None
    if column == "tags":
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return tuple(sorted(normalised(item, column) for item in value))
    if isinstance(value, bool | int | float | str | date):
        return value
    raise AssertionError(f"{column}: a value of type {type(value).__name__} is not compared: {value!r}")


def table(mart: tuple[list[str], list[tuple[Any, ...]]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns in name order, rows sorted, every value normalised."""
    columns, rows = mart
    order = sorted(range(len(columns)), key=lambda index: columns[index])
    named = [columns[index] for index in order]
    values = [tuple(normalised(row[index], columns[index]) for index in order) for row in rows]
    return named, sorted(values, key=repr)


def value_types(mart: tuple[list[str], list[tuple[Any, ...]]]) -> dict[str, set[type]]:
    """Per column, the Python types of its values (raw, before normalising; nulls left out)."""
    columns, rows = mart
    return {
        name: {type(row[index]) for row in rows if row[index] is not None}
        for index, name in enumerate(columns)
    }


def differences(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> str:
    only_left = [row for row in left if row not in right][:3]
    only_right = [row for row in right if row not in left][:3]
    return f"only on DuckDB: {only_left}\nonly on Spark: {only_right}"


@pytest.mark.parametrize("mart", MARTS)
def test_spark_builds_the_mart_duckdb_builds_row_for_row(two_engines, mart: str) -> None:
    duck_columns, duck_rows = table(two_engines.duckdb[mart])
    spark_columns, spark_rows = table(two_engines.spark[mart])
    assert spark_columns == duck_columns
    assert len(duck_rows) > 10, f"{mart}: too few rows for the comparison to mean anything"
    assert spark_rows == duck_rows, differences(duck_rows, spark_rows)


def test_the_landing_holds_every_status_and_every_suppression_reason(two_engines) -> None:
    """What the comparison covers: each final status and reason the rules decide occurs in the data."""
    columns, rows = two_engines.duckdb["message_status"]
    statuses = {row[columns.index("final_status")] for row in rows}
    assert {"delivered", "hard_bounced", "soft_bounced", "complained", "rejected", "sent"} <= statuses
    assert any(row[columns.index("is_auto_reply")] for row in rows)
    columns, rows = two_engines.duckdb["suppression_list"]
    assert {row[columns.index("reason")] for row in rows} >= {"hard_bounce", "complaint", "soft_bounce"}


def test_spark_ran_the_data_and_unit_tests(two_engines) -> None:
    counts = two_engines.spark_counts
    assert counts["engine"] == "spark"
    assert counts["tests_failed"] == 0
    assert counts["tests_passed"] >= 60, counts  # the data tests and the unit tests of the project
    print(f"two-engine build times: {two_engines.seconds}")


@pytest.mark.parametrize("mart", MARTS)
def test_spark_marts_reach_the_duckdb_warehouse_as_duckdb_builds_them(two_engines, mart: str) -> None:
    """export_marts copies Spark's marts into the warehouse, so the digest and prune read Spark's results;
    with the same column types (tags json, naive timestamps) as a DuckDB build's."""
    duck_columns, duck_rows = table(two_engines.duckdb[mart])
    exported_columns, exported_rows = table(two_engines.exported[mart])
    assert exported_columns == duck_columns
    assert exported_rows == duck_rows, differences(duck_rows, exported_rows)
    assert value_types(two_engines.exported[mart]) == value_types(two_engines.duckdb[mart])
