"""`python -m tools.stack ...` is `./medsettle stack ...` (kept for scripts and images that call it)."""

import sys

from tools.cli import run_group

sys.exit(run_group("stack", sys.argv[1:], prog_name="python -m tools.stack"))
