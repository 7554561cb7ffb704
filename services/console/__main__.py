"""Run the operator console: `python -m services.console` (settings from the environment, see config.py).
With `HEALTH_PORT_FILE` set it writes where it listens there (as the services do), for `./medsettle status`."""

import os
from pathlib import Path

import uvicorn

from runtime.health import write_endpoint
from services.console.app import create_app
from services.console.config import ConsoleConfig

if __name__ == "__main__":
    config, env = ConsoleConfig.from_env()
    app = create_app(config)
    if os.environ.get("HEALTH_PORT_FILE"):
        write_endpoint(Path(os.environ["HEALTH_PORT_FILE"]), env.host, env.port)
    # no access log: a query string could carry what an operator typed (a claim id)
    uvicorn.run(app, host=env.host, port=env.port, access_log=False, log_level="warning")
