"""structlog set-up: console or JSON lines, with secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_DSN_PASSWORD = re.compile(r"(?P<prefix>[a-z]+://[^:/@\s]+:)[^@\s]+@")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_KEYS = ("password", "token", "secret", "authorization", "database_url", "dsn")


def redact(text: str) -> str:
    return _BEARER.sub(r"\1***", _DSN_PASSWORD.sub(r"\g<prefix>***@", text))


def _redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if any(word in key.lower() for word in _SECRET_KEYS) and value is not None:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
