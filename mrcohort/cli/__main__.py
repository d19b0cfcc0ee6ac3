"""``python -m mrcohort.cli``: the same as the ``mrcohort`` command."""

from mrcohort.cli.app import main

main()
