"""Logs never carry identity numbers or names in clear."""

import json
import logging
import sys
from pathlib import Path

import pytest
import structlog

from runtime.logging import (
    BoundedRotatingFileHandler,
    LogSettings,
    RepeatLimiter,
    configure_logging,
    mask_identity_numbers,
    rotating_handler,
)


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging changes process-wide state: put the hooks back after each test."""
    hooks = sys.excepthook
    yield
    sys.excepthook = hooks
    configure_logging("INFO", options=LogSettings(LOG_REPEAT_INTERVAL_S=0))


def test_identity_numbers_inside_text_are_masked() -> None:
    assert mask_identity_numbers("claim of 11010519491231002X failed") == "claim of 110105********002X failed"
    assert mask_identity_numbers("order 123") == "order 123"


def test_personal_keys_and_embedded_numbers_are_masked_in_json_logs(capsys) -> None:
    configure_logging("INFO", service="test")
    structlog.get_logger().info("enrolled 11010519491231002X", person_id="11010519491231002X", name="张三",
                                detail={"person_name": "李四", "note": "id 11010519491231002X"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "11010519491231002X" not in line and "张三" not in line and "李四" not in line
    record = json.loads(line)
    assert record["person_id"] == "110105********002X"
    assert record["name"] == "张*"
    assert record["service"] == "test"


# ------------------------------------------------------------------------- bounded files


def _files(log: Path) -> list[Path]:
    return sorted(log.parent.glob(log.name + "*"))


def test_a_log_file_rotates_and_never_holds_more_than_the_configured_bytes(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "svc.log"
    configure_logging("INFO", service="test", options=LogSettings(LOG_FILE=log, LOG_MAX_BYTES=4096, LOG_BACKUPS=2))
    logger = structlog.get_logger("svc")
    for i in range(400):  # about 100 bytes each: ten times the cap of all three files
        logger.info("batch settled", batch=i, note="住院 " * (i % 3), person_id="11010519491231002X")
    logging.getLogger("asyncpg").info("a stdlib record %d", 400)
    files = _files(log)
    assert [f.name for f in files] == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all(f.stat().st_size <= 4096 for f in files)
    assert sum(f.stat().st_size for f in files) <= 3 * 4096
    lines = log.read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "a stdlib record 400"  # the newest is in the current file
    assert json.loads(lines[-2])["batch"] == 399
    assert not any("11010519491231002X" in f.read_text() for f in files)


def test_a_record_longer_than_a_whole_file_is_cut_to_fit(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    handler = rotating_handler(log, max_bytes=1024, backups=1)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.rotation.big")
    logger.propagate = False
    logger.addHandler(handler)
    logger.info("医" * 5000)  # 15,000 bytes in UTF-8, 5,000 characters
    logger.info("after")
    handler.close()
    assert all(f.stat().st_size <= 1024 for f in _files(log))
    assert log.read_text() == "after\n"
    assert (tmp_path / "big.log.1").read_text(encoding="utf-8").endswith(BoundedRotatingFileHandler.CUT + "\n")


# ------------------------------------------------------------------------- repeated errors


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_repeated_stdlib_warning_is_emitted_once_per_interval_with_the_count_suppressed(capsys) -> None:
    faststream = logging.getLogger("faststream")  # as FastStream sets it up on import
    faststream.propagate = False
    faststream.addHandler(logging.StreamHandler(sys.stdout))
    clock = FakeClock()
    configure_logging("INFO", service="test", options=LogSettings(LOG_REPEAT_INTERVAL_S=10), clock=clock)
    kafka = logging.getLogger("aiokafka")
    for i in range(50):  # the broker is down: many a second, each with other arguments
        kafka.error("Unable connect to node with id %s: %s", i % 3, "Connect call failed")
        clock.now += 0.1
    logging.getLogger("faststream").info("still consuming")  # below WARNING: never limited
    logging.getLogger("faststream").info("still consuming")
    lines = _lines(capsys)
    assert [ln["event"] for ln in lines] == ["Unable connect to node with id 0: Connect call failed",
                                            "still consuming", "still consuming"]
    assert "suppressed" not in lines[0]

    clock.now += 10  # the interval is over: the next one goes out and says how many were dropped
    kafka.error("Unable connect to node with id %s: %s", 2, "Connect call failed")
    kafka.error("Unable connect to node with id %s: %s", 2, "Connect call failed")
    kafka.warning("Unable connect to node with id %s: %s", 2, "Connect call failed")  # another level
    lines = _lines(capsys)
    assert [(ln["event"], ln.get("suppressed")) for ln in lines] == [
        ("Unable connect to node with id 2: Connect call failed", 49),
        ("Unable connect to node with id 2: Connect call failed", None)]
    assert lines[1]["level"] == "warning"


def test_a_repeated_structlog_event_is_limited_and_stays_masked(capsys) -> None:
    clock = FakeClock()
    configure_logging("INFO", service="test", options=LogSettings(LOG_REPEAT_INTERVAL_S=10), clock=clock)
    log = structlog.get_logger("settlement")
    for i in range(5):
        log.warning("claim dead-lettered", person_id="11010519491231002X", reason=f"bad 1101051949123100{i}X")
    log.warning("another event")
    log.info("claim dead-lettered")  # INFO of the same name passes
    clock.now += 10.5
    log.warning("claim dead-lettered", person_id="11010519491231002X", reason="late")
    lines = _lines(capsys)
    assert [(ln["event"], ln["level"], ln.get("suppressed")) for ln in lines] == [
        ("claim dead-lettered", "warning", None), ("another event", "warning", None),
        ("claim dead-lettered", "info", None), ("claim dead-lettered", "warning", 4)]
    assert lines[0]["person_id"] == lines[3]["person_id"] == "110105********002X"
    assert lines[0]["reason"] == "bad 110105********000X"


def test_the_limiter_forgets_the_identity_seen_least_recently() -> None:
    clock = FakeClock()
    limiter = RepeatLimiter(10, clock, max_keys=2)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("x", logging.WARNING, __file__, 1, msg, (), None)

    assert [limiter.filter(record(m)) for m in ("a", "a", "b", "c", "a")] == [True, False, True, True, True]


def test_an_uncaught_exception_is_logged_masked(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    configure_logging("INFO", service="test", options=LogSettings(LOG_FILE=log))
    try:
        raise RuntimeError("cannot settle 11010519491231002X")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["event"] == "uncaught exception" and line["level"] == "critical"
    assert "RuntimeError: cannot settle 110105********002X" in line["exception"]
    assert "11010519491231002X" not in log.read_text()
