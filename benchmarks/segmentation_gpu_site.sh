#!/usr/bin/env bash
# Build .whl/mrcohort-gpu-site.tar.xz: the Python packages benchmarks/segmentation_gpu.py
# needs on a GPU machine that has python3.12 with a CUDA torch (and numpy, scipy, pandas,
# scikit-image, matplotlib, ...) but no nnU-Net and no network — this workplace's device
# machines. Unpacked there into a folder on PYTHONPATH (see segmentation_gpu.py's docstring).
# Wheels for cp312 manylinux, installed without dependencies (unzipped); xz because the tree
# that travels to the device is limited to 64 MiB (SimpleITK's wheel alone is 53 MB; this
# archive is ~40 MB). Pins = the project venv's versions; mrsegmentator 2.0.0 for the peer.
#
#   bash benchmarks/segmentation_gpu_site.sh      # from the repository root; .whl/ is ignored
#
# PYVER (default 3.12, the device's python3) and OUT (default .whl/mrcohort-gpu-site.tar.xz)
# may be set, e.g. PYVER=3.11 OUT=/tmp/site311.tar.xz to check the set here with a CPU torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pyver=${PYVER:-3.12}
out=${OUT:-.whl/mrcohort-gpu-site.tar.xz}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plat=(--only-binary=:all: --python-version "$pyver" --implementation cp
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
binary=(nnunetv2==2.8.1 dynamic_network_architectures==0.4.4 batchgenerators==0.25.5
    batchgeneratorsv2==0.3.6 blosc2==4.14.1 numexpr==2.14.2 ndindex==1.10.1
    connected-components-3d==4.1.1 nibabel==5.4.2 simpleitk==2.5.7 pydicom==3.0.2
    mrsegmentator==2.0.0)
for pkg in "${binary[@]}"; do
    "$PY" -m pip download -q --no-deps "${plat[@]}" -d "$tmp/wheels" "$pkg"
done
# published as a source distribution only (pure Python): build its wheel here
"$PY" -m pip wheel -q --no-deps -w "$tmp/wheels" acvl_utils==0.2.6
mkdir -p "$tmp/site" "$(dirname "$out")"
for w in "$tmp"/wheels/*.whl; do
    "$PY" -m zipfile -e "$w" "$tmp/site"
done
tar -C "$tmp/site" -cf - . | xz -T0 -6 >"$out.tmp"
mv "$out.tmp" "$out"
ls -l "$out"
