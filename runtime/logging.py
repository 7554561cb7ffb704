"""structlog JSON logs that never show an identity number or a name in clear, in bounded files,
with repeated warnings rate-limited.

Values under personal-data keys are masked, and any 18-character identity number that appears
inside any string is masked as well (first 6 and last 4 characters kept).

Both paths, structlog events and standard-library records (aiokafka, faststream, asyncpg), end in
one handler: stderr, or with `LOG_FILE` set a size-capped rotating file (`LOG_MAX_BYTES` per file,
`LOG_BACKUPS` older files kept; defaults 20 MiB and 2, so at most 60 MiB per log). On the way,
the same (logger, level, message template or event name) at WARNING or above is emitted at most
once per `LOG_REPEAT_INTERVAL_S` (default 10 s); the next emission carries `suppressed`, how many
were dropped in between. An uncaught exception is logged (masked) before the process dies.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PERSONAL_KEYS = frozenset({"person_id", "id_number", "identity_number", "name", "person_name", "patient_name", "subject_id"})
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{7,8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")

ROOT_LOGGER = "medsettle"
"""structlog events go through the standard-library logger of this name (or a child of it)."""
FOREIGN_EXTRAS = ("topic", "group_id", "message_id")
"""What FastStream's log records carry besides their message (its log context): kept in the JSON line."""
ADOPTED_LOGGERS = ("faststream",)
"""Libraries' loggers that come with a handler of their own (FastStream's, on import): theirs is
removed and they propagate to the root like every other."""


class LogSettings(BaseSettings):
    """Where the logs go and how much of them is kept (environment variables)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    log_file: Path | None = Field(default=None, alias="LOG_FILE")
    """A rotating file instead of stderr."""
    log_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, alias="LOG_MAX_BYTES")
    log_backups: int = Field(default=2, ge=0, alias="LOG_BACKUPS")
    log_repeat_interval_s: float = Field(default=10.0, ge=0, alias="LOG_REPEAT_INTERVAL_S")
    """0 turns the rate limit off."""

    @classmethod
    def of(cls, environment: Mapping[str, str]) -> LogSettings:
        """The settings a child started with `environment` reads (its keys win over this process's)."""
        return cls.model_validate({k: v for k, v in environment.items() if k.startswith("LOG_")})


def mask_identity_numbers(text: str) -> str:
    return _ID_NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def mask_value(key: str, value: Any) -> Any:
    if key in PERSONAL_KEYS and value is not None:
        text = str(value)
        if key.endswith("name"):
            return text[:1] + "*" * max(len(text) - 1, 1)
        return text[:6] + "*" * max(len(text) - 10, 1) + text[-4:] if len(text) > 10 else "*" * len(text)
    if isinstance(value, str):
        return mask_identity_numbers(value)
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(key, v) for v in value]
    return value


def mask_personal_data(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = mask_value(key, event_dict[key])
    return event_dict


# ------------------------------------------------------------------------- bounded files


class BoundedRotatingFileHandler(RotatingFileHandler):
    """The standard library's RotatingFileHandler, made strict: sizes are counted in encoded bytes
    (the stdlib counts characters) and a record longer than a whole file is cut to fit, so no file
    ever exceeds `max_bytes` and all of them together stay within `(backups + 1) * max_bytes`."""

    CUT = " …[cut]"

    def __init__(self, path: Path | str, max_bytes: int, backups: int) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", errors="backslashreplace")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        room = self.maxBytes - 1  # the newline
        data = text.encode("utf-8", "backslashreplace")
        if len(data) <= room:
            return text
        return data[:room - len(self.CUT.encode())].decode("utf-8", "ignore") + self.CUT

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if Path(self.baseFilename).exists() and not Path(self.baseFilename).is_file():
            return False  # /dev/stderr and the like are never rotated (as in the stdlib)
        if self.stream is None:
            self.stream = self._open()
        size = len((self.format(record) + "\n").encode("utf-8", "backslashreplace"))
        self.stream.seek(0, 2)
        return self.stream.tell() > 0 and self.stream.tell() + size > self.maxBytes


def rotating_handler(path: Path | str, max_bytes: int, backups: int) -> logging.Handler:
    """A handler writing `path` in rotation: at most `backups + 1` files of at most `max_bytes`."""
    return BoundedRotatingFileHandler(path, max_bytes, backups)


# ------------------------------------------------------------------------- repeat limiter


class RepeatLimiter(logging.Filter):
    """Lets the same (logger, level, message template or event name) at WARNING or above through
    at most once per `interval_s`; the next one let through carries `suppressed` = how many were
    dropped since. Lower levels always pass. At most `max_keys` identities are remembered (the one
    seen least recently is forgotten first)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 1024) -> None:
        super().__init__()
        self.interval_s, self.clock, self.max_keys = interval_s, clock, max_keys
        self._seen: OrderedDict[tuple[str, int, str], list[float | int]] = OrderedDict()  # key -> [last, dropped]
        self._lock = threading.Lock()

    @staticmethod
    def identity(record: logging.LogRecord) -> tuple[str, int, str]:
        msg = record.msg
        template = str(msg.get("event")) if isinstance(msg, dict) else str(msg)
        return record.name, record.levelno, template

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.interval_s <= 0:
            return True
        key, now = self.identity(record), self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.interval_s:
                seen[1] += 1
                self._seen.move_to_end(key)
                return False
            if seen is not None and seen[1]:
                record.suppressed = seen[1]
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        return True


def add_suppressed(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Carries the limiter's count of dropped repeats (set on the record) into the JSON line."""
    suppressed = getattr(event_dict.get("_record"), "suppressed", 0)
    if suppressed:
        event_dict["suppressed"] = suppressed
    return event_dict


# ------------------------------------------------------------------------- set-up


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger(ROOT_LOGGER).critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def configure_logging(level: str = "INFO", service: str | None = None, options: LogSettings | None = None,
                      clock: Callable[[], float] = time.monotonic) -> None:
    """JSON lines on stderr, or in `LOG_FILE` rotated (see the module's docstring); standard-library
    loggers (aiokafka, faststream, asyncpg) go through the same masking and the same limiter.
    `options` defaults to the environment's `LogSettings`; `clock` is the limiter's (tests)."""
    options = options or LogSettings()
    numeric = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,  # which library or module wrote the line (faststream, aiokafka, ...)
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_personal_data,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: logging.getLogger(ROOT_LOGGER + (f".{args[0]}" if args and args[0] else "")),
        cache_logger_on_first_use=False,
    )
    handler = (rotating_handler(options.log_file, options.log_max_bytes, options.log_backups)
               if options.log_file else logging.StreamHandler(sys.stderr))
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[add_suppressed, structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(FOREIGN_EXTRAS), *shared]))
    handler.addFilter(RepeatLimiter(options.log_repeat_interval_s, clock))
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, BoundedRotatingFileHandler):  # ours from an earlier call: release the file
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))  # other libraries: INFO at the most detailed
    logging.getLogger(ROOT_LOGGER).setLevel(numeric)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for name in ADOPTED_LOGGERS:  # their own handlers would bypass the masking, the limiter and the file
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    if service:
        structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


# ------------------------------------------------------------------------- the claim on every line


def claim_id_of(payload: Any) -> str | None:
    """The claim a payload is about (`claim_id`, or its `claim` summary's), None for other events;
    of an envelope whose payload broke its contract, the claim id it names (hospital id and claim id)."""
    if isinstance(getattr(payload, "payload", None), dict):
        raw = payload.payload
        claim_id = raw.get("claim_id") or (f"{raw['hospital_id']}:{raw['hospital_claim_id']}"
                                           if isinstance(raw.get("hospital_id"), str)
                                           and isinstance(raw.get("hospital_claim_id"), str) else None)
        return claim_id[:200] if isinstance(claim_id, str) else None
    claim_id = getattr(payload, "claim_id", None)
    if claim_id is None and (claim := getattr(payload, "claim", None)) is not None:
        claim_id = getattr(claim, "claim_id", None)
    return claim_id if isinstance(claim_id, str) else None


def bound_claim(claim_id: str | None) -> Any:
    """A context in which every log line (structlog or standard library) carries `claim_id`:
    wrap the work on one claim in it (`with bound_claim(claim_id_of(payload)): ...`)."""
    if claim_id is None:
        return contextlib.nullcontext()
    return structlog.contextvars.bound_contextvars(claim_id=claim_id)
