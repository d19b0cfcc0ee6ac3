"""Tests for mrcohort.qc: the QC picture and the gallery page."""
