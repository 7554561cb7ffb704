"""Run the audit service (基金监管): `python -m services.audit` (settings from the environment)."""

from runtime.app import run
from runtime.settings import load_settings
from services.audit.app import SPEC

if __name__ == "__main__":
    run(SPEC, load_settings(SPEC.name))
