"""`medsettle stack reset` refuses while the stack is in use and wipes nothing; `--stop-services` stops
the services of tools.stack.services first. Run against a throwaway stack (MEDSETTLE_LOCAL), never the
one the tests use: it has a pid file of a stand-in service and no broker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import stack
from tools.cli import main
from tools.stack import services
from tools.stack.common import paths
from tools.stack.pg import candidate_bases


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stack directory with Kafka and PostgreSQL data in it (files only: nothing runs)."""
    local = tmp_path / "local"
    monkeypatch.setenv("MEDSETTLE_LOCAL", str(local))
    for d in (local / "kafka" / "data", local / "pg" / "data"):
        d.mkdir(parents=True)
        (d / "marker").write_text("data")
    assert paths().local == local.resolve()  # a reset here can never reach the checkout's own stack
    yield local


@pytest.fixture
def stand_in(throwaway: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process registered as the settlement service of the throwaway stack."""
    proc = subprocess.Popen(["sleep", "300"])
    paths().run.mkdir(parents=True, exist_ok=True)
    (paths().run / "settlement.pid").write_text(str(proc.pid))
    yield proc
    proc.kill()
    proc.wait()


def test_the_throwaway_stack_is_separate_from_the_checkouts(throwaway: Path) -> None:
    p = paths()
    assert p.local == throwaway.resolve() and p.run == throwaway.resolve() / "run"
    assert not set(candidate_bases(p)) & set(candidate_bases(type(p)(p.root)))


def test_platform_groups_are_those_of_any_namespace() -> None:
    assert stack.is_platform_group("medsettle.settlement.claims.discharges")
    assert stack.is_platform_group("t1a2b3c4.medsettle.audit.audit.alerts")
    assert not stack.is_platform_group("console-consumer-4711")


def test_reset_refuses_while_a_service_runs_naming_it_and_wipes_nothing(throwaway: Path,
                                                                         stand_in: subprocess.Popen[bytes]) -> None:
    blockers = stack.reset_blockers()
    assert blockers.services == {"settlement": stand_in.pid} and not blockers.groups
    with pytest.raises(stack.ResetRefused) as refused:
        stack.reset(echo=lambda _: None)
    assert f"settlement (pid {stand_in.pid})" in str(refused.value) and "--stop-services" in str(refused.value)
    assert stand_in.poll() is None
    assert (throwaway / "kafka" / "data" / "marker").exists() and (throwaway / "pg" / "data" / "marker").exists()
    assert main(["stack", "reset"]) == 3


def test_reset_with_stop_services_stops_them_then_wipes(throwaway: Path, stand_in: subprocess.Popen[bytes]) -> None:
    said: list[str] = []
    stack.reset(stop_services=True, echo=said.append)
    assert stand_in.poll() is not None and services.running() == {}
    assert "stopped settlement" in said
    assert not (throwaway / "kafka" / "data").exists() and not (throwaway / "pg").exists()


def test_reset_of_an_unused_stack_wipes_it(throwaway: Path) -> None:
    assert not stack.reset_blockers()
    assert main(["stack", "reset"]) == 0
    assert not (throwaway / "kafka" / "data").exists() and not (throwaway / "pg").exists()
