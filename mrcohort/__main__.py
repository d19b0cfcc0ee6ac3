"""``python -m mrcohort``: the same as the ``mrcohort`` command."""

from mrcohort.cli import main

main()
