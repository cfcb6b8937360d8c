"""Bouncehouse: Amazon SES feedback events from S3 into a DuckDB warehouse.

The package holds all logic; the Airflow DAGs in ``dags/`` and the CLI (``python -m bouncehouse``)
are thin callers of the functions here.
"""

__version__ = "0.1.0"
