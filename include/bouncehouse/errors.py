"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class BouncehouseError(Exception):
    """Base class: the message alone tells the user what to fix."""


class ConfigError(BouncehouseError):
    """A setting (option, environment variable, connection or file) is missing or wrong."""


class WarehouseBusyError(BouncehouseError):
    """Another process held the DuckDB file's write lock for longer than we were willing to wait."""


class TransformError(BouncehouseError):
    """dbt failed; the message names the failing node."""
