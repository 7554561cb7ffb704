"""`python -m tools ...` is `./medsettle ...` and the `medsettle` console script."""

import sys

from tools.cli import main

sys.exit(main(prog_name="medsettle"))
