"""The F1 pipeline's routes, pages, templates and assets in `pipeworks serve`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pipeworks.registry import WebParts

_HERE = Path(__file__).parent
# The runs of one session: their run page links to the session's page.
_SESSION_RUN = re.compile(r"f1-(?:session|live)-(\d+)")


def web_parts() -> WebParts:
    """The F1 part of the server (Pipeline.web): imports FastAPI only when called, so the
    CLI never loads the web stack. Templates are named `f1/...`, assets served at
    /static/f1/."""
    from starters.f1.web.routes import api_router, pages_router

    return WebParts(api=api_router, pages=pages_router, templates=_HERE / "templates",
                    static=_HERE / "static", nav=(("F1 sessions", "/f1"),),
                    run_links=session_links)


def session_links(workflow_id: str) -> Sequence[tuple[str, str]]:
    found = _SESSION_RUN.fullmatch(workflow_id)
    return [(f"Session {found.group(1)}: charts", f"/f1/sessions/{found.group(1)}")
            ] if found else [("F1 sessions", "/f1")] if workflow_id.startswith("f1-") else []
