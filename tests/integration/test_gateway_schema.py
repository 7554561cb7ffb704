"""Property-based tests of the hospital gateway's HTTP API with Schemathesis, from the OpenAPI
document the gateway generates (`/openapi.json`), against the real stack: the whole chain and the
gateway run in a namespace, and Schemathesis, signed in as a hospital, sends what the document
allows and what it does not (its examples, coverage and fuzzing phases).

Checks: no 5xx (`not_a_server_error`); every response conforms to the document: its status
code, content type and schema (`status_code_conformance`, `content_type_conformance`,
`response_schema_conformance`); and an operation that needs a sign-in refuses a request
without one (`ignored_auth`). A modest number of examples per operation keeps the run short.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from services.gateway.app import SPEC as GATEWAY
from tests.integration.harness import Namespace, running
from tests.integration.platform import HOSPITAL_CHAIN, enroll, person_id, platform, provider, register

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("gateway-schemathesis.toml")
EXAMPLES = 25
"""Examples per operation and phase (seven operations)."""
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "ignored_auth")


async def test_the_gateway_keeps_its_openapi_document_under_generated_requests(ns: Namespace) -> None:
    credentials = await ns.hospital("H1")
    assert credentials.access.username and credentials.access.password
    async with platform(ns, HOSPITAL_CHAIN), \
            running(GATEWAY, ns.settings("gateway", gateway_port=0)) as gateway:
        await register(ns, [enroll(person_id(1))], [provider("H1", 2)])
        url = gateway.state["api"].url
        env = {**os.environ, "GATEWAY_TEST_USER": credentials.access.username,
               "GATEWAY_TEST_PASSWORD": credentials.access.password.get_secret_value()}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
            "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "13", "--generation-database", "none",
            "--phases", "examples,coverage,fuzzing", "--request-timeout", "20", "--no-color",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    report = out.decode()
    print(report)
    assert proc.returncode == 0, report
    assert "/v1/pre-settlements" in report and "/v1/discharges" in report  # every operation was tested
