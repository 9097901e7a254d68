"""``python -m utils.course COMMAND ...``: the course's command line (:mod:`utils.course.cli`)."""
import sys

from .cli import main

sys.exit(main())
