"""A synthetic store of any size, written through the job's own writer (:class:`Flusher`):
``organ_metrics``, ``vessel_metrics``, ``qc`` and ``ledger`` rows of made-up participants
with plausible values, plus a phenotype table (age, sex, BMI). For the scale benchmark
(``benchmarks/store_scale.py``) and for tests that need many participants, several
sequences or present vessels without running a model.

Values are random but seeded; liver fat fraction rises with BMI and age so that a
"median liver fat fraction by sex and age decade" query has something to show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mrcohort.jobs.flush import Flusher
from mrcohort.labels import MRSEG_LABEL_MAP
from mrcohort.schemas.rows import provenance

__all__ = ["SyntheticStore", "phenotypes", "write_synthetic_store"]

_VESSELS = range(13, 20)
_TORTUOSITY = (16, 17)


@dataclass(frozen=True)
class SyntheticStore:
    """What :func:`write_synthetic_store` wrote."""

    store: Path
    cohort: str
    model_key: str
    participants: int
    flushes: int


def _group(label: object) -> str:
    group = getattr(label, "group", "other")
    return str(getattr(group, "value", group))


def phenotypes(participants: int, seed: int = 0) -> pa.Table:
    """``participant_id, age_years, sex, bmi_kg_m2`` of synthetic participants 1000000+i."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "participant_id": [str(1_000_000 + i) for i in range(participants)],
            "age_years": rng.integers(40, 80, participants).astype(np.int16),
            "sex": rng.choice(np.array(["F", "M"]), participants),
            "bmi_kg_m2": np.round(rng.normal(27.0, 4.5, participants).clip(16, 50), 1),
        }
    )


def _participant_rows(
    pid: str,
    visit: str,
    sequence: str,
    *,
    age: float,
    bmi: float,
    rng: np.random.Generator,
    keys: dict[str, object],
    empty: frozenset[int],
) -> dict[str, list[dict[str, object]]]:
    organ, vessel, qc = [], [], []
    liver_ff = float(np.clip(0.02 + 0.006 * (bmi - 22) + 0.001 * (age - 40), 0.01, 0.45))
    for label_id, label in MRSEG_LABEL_MAP.labels.items():
        name = label.name
        is_empty = label_id in empty
        volume = 0.0 if is_empty else float(rng.lognormal(np.log(50 + 30 * label_id), 0.2))
        ff = None if is_empty else float(np.clip(rng.normal(liver_ff if label_id == 5 else 0.05,
                                                                0.01), 0, 1))  # fmt: skip
        base = {**keys, "participant_id": pid, "visit": visit, "sequence": sequence,
                "label_id": label_id, "label_name": name}  # fmt: skip
        organ.append(
            {**base, "label_group": _group(label), "n_vox": int(volume * 100),
             "volume_ml": volume, "is_empty": is_empty, "touches_border": False,
             "ff_median": ff, "ff_mean": ff, "ff_p25": None if ff is None else ff - 0.01,
             "ff_p75": None if ff is None else ff + 0.01, "ff_n_vox": 0 if is_empty else 500,
             "ff_erosion_mm": 3.0, "ff_erosion_fallback": False, "swap_suspected": False}
        )  # fmt: skip
        flags = "missing" if is_empty else ""
        qc.append(
            {**base, "expected": True, "present": not is_empty, "missing": is_empty,
             "volume_ml": volume, "volume_min_ml": None, "volume_max_ml": None,
             "implausible_volume": False, "truncated": False, "swap_suspected": False,
             "fragmented": None, "qc_flags": flags, "qc_pass": not flags}
        )  # fmt: skip
        if label_id in _VESSELS:
            tort = label_id in _TORTUOSITY and not is_empty
            ti = float(1.1 + rng.gamma(2.0, 0.05)) if tort else None
            vessel.append(
                {**base, "n_components_26": 0 if is_empty else 1,
                 "n_components_6": 0 if is_empty else 1, "n_dust_components_26": 0,
                 "n_dust_components_6": 0, "is_single_component": not is_empty,
                 "largest_component_fraction": None if is_empty else 1.0, "dust_mm3": 5.0,
                 "tortuosity_status": ("empty" if is_empty else "ok")
                 if label_id in _TORTUOSITY else None,
                 "tortuosity_index": ti, "centerline_length_mm": None if ti is None else 120 * ti,
                 "chord_length_mm": None if ti is None else 120.0,
                 "soam_rad_per_mm": None if ti is None else 0.01}
            )  # fmt: skip
    return {"organ_metrics": organ, "vessel_metrics": vessel, "qc": qc}


def write_synthetic_store(
    store: Path,
    participants: int,
    *,
    cohort: str = "synthetic",
    model_key: str = "synthetic0001",
    measure_key: str = "measure0001",
    run_id: str = "20260101T000000Z-synth0",
    sequences: Sequence[str] = ("dixon",),
    flush_every: int = 200,
    empty_labels: Sequence[int] = (3,),
    seed: int = 0,
) -> SyntheticStore:
    """Write ``participants`` synthetic participant-visits (visit ``2_0``) into ``store``,
    ``flush_every`` per flush (the job's default), and ``store/../phenotypes.csv``'s rows as
    :func:`phenotypes` (returned by that function; not written here)."""
    rng = np.random.default_rng(seed)
    pheno = phenotypes(participants, seed).to_pydict()
    flusher = Flusher(store, cohort=cohort, model_key=model_key, run_id=run_id,
                      every_n=flush_every, every_s=1e9)  # fmt: skip
    keys = provenance(input_sha256=None, params_hash="synthetic", model_key=model_key,
                      measure_key=measure_key, run_id=run_id)  # fmt: skip
    for i, pid in enumerate(pheno["participant_id"]):
        sha = hashlib.sha256(pid.encode()).hexdigest()
        tables: dict[str, list[dict[str, object]]] = {}
        for sequence in sequences:
            rows = _participant_rows(
                pid, "2_0", sequence, age=float(pheno["age_years"][i]),
                bmi=float(pheno["bmi_kg_m2"][i]), rng=rng,
                keys={**keys, "cohort": cohort, "input_sha256": sha},
                empty=frozenset(empty_labels),
            )  # fmt: skip
            for name, table_rows in rows.items():
                tables.setdefault(name, []).extend(table_rows)
        slot = f"{pid}/2_0"
        ledger = {**keys, "cohort": cohort, "participant_id": pid, "visit": "2_0",
                  "slot": slot, "layout": "ukbb", "source": f"{pid}_20201_2_0.zip",
                  "fingerprint": sha[:16], "action": "segment", "outcome": "ok",
                  "retryable": False, "wrote_scans": False, "flush_id": "",
                  "input_sha256": sha}  # fmt: skip
        flusher.add(tables, ledger)
        if flusher.due():
            flusher.flush()
    flusher.flush()
    return SyntheticStore(Path(store), cohort, model_key, participants, flusher.n_flushes)
