"""Run a benchmark script against another mrcohort source tree (e.g. a worktree of an older
commit) with this venv, bypassing the editable install, to compare before and after::

    git worktree add /tmp/old 89dd25d
    python benchmarks/run_tree.py /tmp/old /tmp/old/benchmarks/stitch_speed.py --repeat 3
    python benchmarks/run_tree.py . benchmarks/stitch_speed.py --repeat 3
"""
import runpy
import sys

tree, script, *args = sys.argv[1:]
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, tree)
sys.path.insert(1, str(__import__("pathlib").Path(script).resolve().parent))
for name in [m for m in sys.modules if m == "mrcohort" or m.startswith("mrcohort.")]:
    del sys.modules[name]
import mrcohort  # noqa: E402

assert mrcohort.__file__.startswith(tree), mrcohort.__file__
print(f"# mrcohort from {mrcohort.__file__}", flush=True)
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
