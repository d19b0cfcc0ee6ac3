"""mrcohort.biomarkers: pure functions of arrays + ``spacing_mm`` returning typed records.

Every function takes label maps in array order ``(z, y, x)`` with the ids of a ``label_map=``
(`mrcohort.labels.LabelMap`; MRSegmentator's 40 classes by default) and a
required, keyword-only ``spacing_mm = (sz, sy, sx)``; none reads files (``cli_measure`` is
the file shell). Definitions, with the module that implements each:

``volume``
    Volume = voxel count x voxel volume, in ml. ``touches_border``: a voxel within
    ``border_margin_vox`` layers of any face of the field of view (possibly truncated), as
    TotalSegmentator flags it (Wasserthal et al., Radiol Artif Intell 2023;5:e230024).
``fat_fraction``
    Dixon fat fraction (not PDFF: no T1, T2* or fat-spectrum correction) with magnitude
    discrimination: FF = 1 - W/IP where water dominates, F/IP where fat dominates (Liu et
    al., Magn Reson Med 2007;58:354-364); F/(F+W) without an in-phase image. Median, mean,
    25th/75th percentiles inside the label eroded by ``erosion_mm`` (anisotropic Euclidean
    distance, ``edt``); falls back to the whole label when fewer than ``min_voxels`` remain.
    ``swap_suspected``: liver, spleen or a muscle with median FF > 0.5.
``tortuosity``
    Iliac arteries: isotropic resampling, skeleton (Lee et al. 1994; scikit-image), longest
    end-to-end path of the skeleton graph (skan), smoothing spline; centreline length L,
    chord D, TI = L/D, and the sum-of-angles metric (Bullitt et al., IEEE TMI
    2003;22:1163-1171), with two documented stabilisations.
``connectivity``
    Vessels: connected components at 26- and 6-connectivity (cc3d, all labels in one pass),
    components below ``dust_mm3`` counted separately; single component = the seed's "vessel
    consistency"; largest-component volume fraction.
``intensity``
    Mean image value per label (one weighted bincount).
``qc``
    Per label: missing (expected but absent), implausible volume (configurable ranges),
    truncated, fat-water swap suspected, fragmented vessel.
``participant``
    `measure_participant` runs all of the above and builds the rows of the
    ``organ_metrics``, ``vessel_metrics`` and ``qc`` tables.
``label_maps``
    TotalSegmentator ``total_mr`` / ``total`` label maps onto MRSegmentator ids by name.

Accuracy against analytic phantoms (``mrcohort.phantoms.fixtures``) is tested in
``tests/test_biomarkers_*.py`` and reported in ``benchmarks/RESULTS.md``.
"""
