"""mrcohort: whole-body MRI cohorts (UK Biobank, NAKO) to analysis-ready biomarker tables."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrcohort")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "duckdb", "open_table", "wide_table"]


def __getattr__(name: str):  # lazy: importing mrcohort stays light (no duckdb, no pyarrow)
    if name == "open_table":
        from mrcohort.readers import open_table

        return open_table
    if name == "wide_table":
        from mrcohort.wide import wide_table

        return wide_table
    if name == "duckdb":
        from mrcohort.readers import connect

        return connect
    raise AttributeError(f"module 'mrcohort' has no attribute {name!r}")
