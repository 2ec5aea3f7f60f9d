"""structlog set-up: console or JSON lines, with secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from temporalio import activity, workflow

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


# The SDK's loggers for workflow and activity code put the run's identity in `extra`.
_TEMPORAL_CONTEXT = {
    "temporal_workflow": {"workflow_id": "workflow_id", "run_id": "run_id",
                          "workflow_type": "workflow_type"},
    "temporal_activity": {"workflow_id": "workflow_id", "workflow_run_id": "run_id",
                          "activity_type": "activity", "attempt": "attempt"},
}
# Loggers whose info lines are ours to show; the SDK's own internals stay at warning.
_APPLICATION_LOGGERS = ("temporalio.workflow", "temporalio.activity", "pipeworks")


def _temporal_context(_: Any, __: str, event: MutableMapping[str, Any]
                      ) -> MutableMapping[str, Any]:
    record = event.get("_record")
    for attribute, fields in _TEMPORAL_CONTEXT.items():
        context = getattr(record, attribute, None)
        if isinstance(context, dict):
            for source, target in fields.items():
                if source in context:
                    event.setdefault(target, context[source])
    return event


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    """structlog lines and stdlib lines (the Temporal SDK's `workflow.logger` and
    `activity.logger`) rendered alike, each bound to its workflow id, run id and activity."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _redact_event, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, _temporal_context],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    # Tracebacks as text, so that they are redacted like the rest.
                    structlog.processors.format_exc_info, _redact_event, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))
    for name in _APPLICATION_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
    # The context is a field of every line already; the SDK would repeat it in the text.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
