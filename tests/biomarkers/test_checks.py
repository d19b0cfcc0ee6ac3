"""The argument checks every measure shares."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrcohort.biomarkers._checks import (
    check_label_map,
    int_at_least,
    non_negative,
    positive,
    resolve_label_ids,
    validate_spacing,
)
from mrcohort.labels import BODY_COMP_LABEL_MAP


@pytest.mark.parametrize(
    "bad",
    [(1.0, 1.0), (1.0, 0.0, 1.0), (1.0, -2.0, 1.0), (1.0, math.nan, 1.0), (1, math.inf, 1), "abc"],
)
def test_validate_spacing_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="spacing_mm"):
        validate_spacing(bad, 3)  # type: ignore[arg-type]


def test_validate_spacing_accepts_arrays() -> None:
    assert validate_spacing(np.array([2, 1.5, 1.5]), 3) == (2.0, 1.5, 1.5)
    assert all(type(v) is float for v in validate_spacing(np.array([2, 1, 1]), 3))


def test_label_ids_in_order_without_duplicates_and_known_only() -> None:
    assert resolve_label_ids([40, 1, 40]) == (40, 1)
    assert resolve_label_ids(None, BODY_COMP_LABEL_MAP) == tuple(range(1, 11))
    with pytest.raises(ValueError, match=r"unknown label id 0 .* \(valid: 1..40\)"):
        resolve_label_ids([0])
    with pytest.raises(ValueError, match="integers"):
        resolve_label_ids([True])


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros((3, 3), np.uint8), "3-D"),
        (np.zeros((3, 3, 3), np.float32), "integer"),
        (np.zeros((3, 3, 3), bool), "integer"),
        (np.full((3, 3, 3), -1, np.int16), "non-negative"),
        ([[[0]]], "numpy array"),
    ],
)
def test_label_map_checks(labels: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_label_map(labels)  # type: ignore[arg-type]


def test_numeric_parameter_checks() -> None:
    assert positive("a", 2) == 2.0 and non_negative("b", 0) == 0.0
    assert int_at_least("c", np.int64(3), 1) == 3
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="a must be positive and finite"):
            positive("a", bad)
    with pytest.raises(ValueError, match="b must be finite and >= 0"):
        non_negative("b", math.nan)
    with pytest.raises(ValueError, match="c must be an integer"):
        int_at_least("c", 1.5, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="c must be >= 1"):
        int_at_least("c", 0, 1)
