import sys

from sivi_engine.openmp import prefer_spinning_workers

prefer_spinning_workers()  # before sivi_engine.cli imports torch

from sivi_engine.cli import main  # noqa: E402

sys.exit(main())
