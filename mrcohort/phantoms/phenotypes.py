"""Synthetic phenotypes of phantom participants (``phenotypes.csv``): age, sex and BMI.

Epidemiologists merge image-derived measures with phenotypes; the demo needs some to show
that join. They are drawn so that they relate plausibly to each participant's anatomy, which
:func:`~mrcohort.phantoms.anatomy.make_anatomy` draws independently of any phenotype:

- **sex** follows body size (the anatomy's width, depth and height scale factors, which also
  scale every organ): larger bodies are more often male;
- **age** follows vertebral bone-marrow fat fraction (the spine's tissue), which rises with
  age (Griffith et al., Radiology 2005);
- **BMI** follows the subcutaneous fat thickness and, less, the liver fat fraction.

Each relation has seeded noise from a stream of its own, so the images and ``truth.csv`` are
exactly those of a cohort written without phenotypes. Synthetic: not a model of any
population.
"""

from __future__ import annotations

import numpy as np

from mrcohort.labels import MRSEG_IDS
from mrcohort.phantoms.anatomy import Anatomy, make_anatomy
from mrcohort.phantoms.participant import participant_id_for

__all__ = ["PHENOTYPE_COLUMNS", "phenotype", "phenotype_rows"]

PHENOTYPE_COLUMNS: tuple[str, ...] = ("participant_id", "age_years", "sex", "bmi_kg_m2")
#: Extra entropy word of the phenotype noise stream: ``default_rng([seed, index, 1])`` is
#: independent of the participant's image stream ``default_rng([seed, index])``.
_PHENOTYPE_STREAM = 1
#: Ranges :func:`~mrcohort.phantoms.anatomy.make_anatomy` draws from (keep in step with it).
_SPINE_FF = (0.30, 0.55)
_FAT_MM = (12.0, 32.0)
_LIVER_FF = (0.02, 0.25)


def _unit(value: float, lo: float, hi: float) -> float:
    """``value`` mapped from [lo, hi] to [0, 1]."""
    return (value - lo) / (hi - lo)


def phenotype(anatomy: Anatomy, rng: np.random.Generator) -> dict[str, object]:
    """Age (years, 1 decimal), sex (``"F"``/``"M"``) and BMI (kg/m², 1 decimal) of one
    phantom participant, related to its anatomy, with noise drawn from ``rng``.

    Parameters
    ----------
    anatomy
        The participant's anatomy (:func:`~mrcohort.phantoms.anatomy.make_anatomy`).
    rng
        The phenotype noise stream (three normal draws, in the order age, sex, BMI).

    Returns
    -------
    dict
        ``age_years`` in [40, 82], ``sex``, ``bmi_kg_m2`` in [17, 40].
    """
    noise_age, noise_sex, noise_bmi = rng.standard_normal(3)
    body = anatomy.body
    # the torso semi-axes are 165 * sx, 112 * sy; the neck height 965 * sz (anatomy.py)
    size = (
        _unit(body.torso_semi[0] / 165.0, 0.92, 1.08)
        + _unit(body.torso_semi[1] / 112.0, 0.88, 1.12)
        + _unit(body.neck_z / 965.0, 0.96, 1.04)
    ) / 3.0  # 0 smallest .. 1 largest
    marrow = _unit(anatomy.tissues[MRSEG_IDS["spine"]].ff, *_SPINE_FF)
    fat = _unit(body.fat_mm, *_FAT_MM)
    liver = _unit(anatomy.tissues[MRSEG_IDS["liver"]].ff, *_LIVER_FF)
    age = min(82.0, max(40.0, 44.0 + 32.0 * marrow + 4.0 * noise_age))
    sex = "M" if size - 0.5 + 0.1 * noise_sex > 0.0 else "F"
    bmi = min(40.0, max(17.0, 20.0 + 8.0 * fat + 2.5 * liver + 1.0 * noise_bmi))
    return {"age_years": round(age, 1), "sex": sex, "bmi_kg_m2": round(bmi, 1)}


def phenotype_rows(seed: int, participants: int) -> list[dict[str, object]]:
    """``phenotypes.csv`` rows of the first ``participants`` of the cohort drawn with
    ``seed``: each anatomy drawn again from the participant's stream
    ``default_rng([seed, index])``, exactly as :func:`~mrcohort.phantoms.make_participant`
    draws it (cheap: nothing is rendered)."""
    rows: list[dict[str, object]] = []
    for index in range(participants):
        anatomy = make_anatomy(np.random.default_rng([seed, index]))
        noise = np.random.default_rng([seed, index, _PHENOTYPE_STREAM])
        rows.append({"participant_id": participant_id_for(index), **phenotype(anatomy, noise)})
    return rows
