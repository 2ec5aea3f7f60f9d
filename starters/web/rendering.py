"""Server-rendered pages: Jinja templates of the kernel and of every pipeline (each in
its own folder), with what every page shows (who is logged in, the menu, the CSRF
token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from pipeworks.registry import WebParts

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def build_templates(parts: dict[str, WebParts]) -> Jinja2Templates:
    folders = [TEMPLATES] + [p.templates for p in parts.values() if p.templates]
    environment = Environment(loader=ChoiceLoader([FileSystemLoader(f) for f in folders]),
                              autoescape=select_autoescape(default=True))
    return Jinja2Templates(env=environment)


def render(request: Request, template: str, context: dict[str, Any],
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    from starters.web.state import server

    state = server(request)
    principal = getattr(request.state, "principal", None)
    full = {"principal": principal, "csrf_token": principal.csrf_token if principal else "",
            "nav": state.nav, "web_ui_url": state.settings.temporal_ui_url,
            "namespace": state.settings.temporal_namespace, **context}
    response = state.templates.TemplateResponse(request, template, full,
                                                status_code=status_code, headers=headers)
    assert isinstance(response, HTMLResponse)
    return response


def error_page(request: Request, status: int, title: str, detail: str,
               headers: dict[str, str] | None = None) -> Response:
    return render(request, "error.html", {"status": status, "title": title,
                                          "detail": detail}, status_code=status,
                  headers=headers)
