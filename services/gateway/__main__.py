from runtime.app import run
from runtime.settings import load_settings
from services.gateway.app import SPEC

if __name__ == "__main__":
    run(SPEC, load_settings(SPEC.name))
