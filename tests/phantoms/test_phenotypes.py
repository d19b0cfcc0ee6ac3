"""Synthetic phenotypes of phantom participants (mrcohort.phantoms.phenotypes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrcohort.labels import MRSEG_IDS
from mrcohort.phantoms import PHENOTYPE_COLUMNS, phenotype, phenotype_rows
from mrcohort.phantoms.anatomy import make_anatomy


def test_rows_are_seeded_typed_and_in_range():
    rows = phenotype_rows(0, 12)
    assert rows == phenotype_rows(0, 12)
    assert rows != phenotype_rows(1, 12)
    assert phenotype_rows(0, 3) == rows[:3]  # a participant's phenotype: its own stream
    df = pd.DataFrame(rows)
    assert tuple(df.columns) == PHENOTYPE_COLUMNS
    assert df["participant_id"].tolist() == [f"{1000001 + i:07d}" for i in range(12)]
    assert df["age_years"].between(40, 82).all() and df["bmi_kg_m2"].between(17, 40).all()
    assert set(df["sex"]) == {"F", "M"}


def test_the_demo_cohort_has_both_sexes_and_a_spread_of_ages():
    """``mrcohort demo`` (seed 0) with 4 participants: the notebooks plot by sex and age."""
    df = pd.DataFrame(phenotype_rows(0, 4))
    assert set(df["sex"]) == {"F", "M"}
    assert df["age_years"].max() - df["age_years"].min() > 10


def test_phenotypes_relate_to_the_anatomy():
    """BMI rises with subcutaneous fat, age with marrow fat, males are the larger bodies."""
    rows = []
    for index in range(40):
        anatomy = make_anatomy(np.random.default_rng([5, index]))
        rows.append(
            {
                **phenotype(anatomy, np.random.default_rng([5, index, 1])),
                "fat_mm": anatomy.body.fat_mm,
                "marrow_ff": anatomy.tissues[MRSEG_IDS["spine"]].ff,
                "width_mm": anatomy.body.torso_semi[0],
            }
        )
    df = pd.DataFrame(rows)
    assert df["bmi_kg_m2"].corr(df["fat_mm"]) > 0.7
    assert df["age_years"].corr(df["marrow_ff"]) > 0.7
    by_sex = df.groupby("sex")["width_mm"].mean()
    assert by_sex["M"] > by_sex["F"]


def test_rows_describe_the_participants_the_cohort_renders(participant):
    """``phenotype_rows`` redraws the anatomy :func:`make_participant` painted (seed 3,
    index 1): same id, same liver fat fraction as its truth rows."""
    row = phenotype_rows(3, 2)[1]
    assert row["participant_id"] == participant.participant_id
    anatomy = make_anatomy(np.random.default_rng([3, 1]))
    truth = {r["label_name"]: r["fat_fraction"] for r in participant.truth}
    assert truth["liver"] == anatomy.tissues[MRSEG_IDS["liver"]].ff
