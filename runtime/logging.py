"""structlog JSON logs that never show an identity number or a name in clear.

Values under personal-data keys are masked, and any 18-character identity number that appears
inside any string is masked as well (first 6 and last 4 characters kept).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset({"person_id", "id_number", "identity_number", "name", "person_name", "patient_name", "subject_id"})
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{7,8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")


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


def configure_logging(level: str = "INFO", service: str | None = None) -> None:
    """JSON lines on stderr; standard-library loggers (aiokafka, faststream) go through the same masking."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_personal_data,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(), foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if service:
        structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
