"""mrcohort: whole-body MRI cohorts (UK Biobank, NAKO) to analysis-ready biomarker tables."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrcohort")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
