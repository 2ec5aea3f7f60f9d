"""The FastAPI application of `pipeworks serve`: the kernel's API and pages, every
pipeline's parts, static assets (all local: the dashboard works offline)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pipeworks import registry
from pipeworks.db import create_pool, migrate_dsn
from pipeworks.registry import WebParts
from pipeworks.settings import Settings
from pipeworks.temporal_client import connect_temporal
from pipeworks.web_settings import WebSettings
from starters.web import api_runs, pages, problems, sessions
from starters.web.events import ProgressHub
from starters.web.middleware import SecurityAndAccessLog
from starters.web.rendering import STATIC, build_templates
from starters.web.state import ServerState

API_PREFIX = "/api/v1"


def create_app(settings: Settings) -> FastAPI:
    web = settings.of(WebSettings)
    pipelines = registry.selected(settings.pipelines)
    parts: dict[str, WebParts] = {p.name: p.web() for p in pipelines if p.web is not None}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn = settings.resolved_database_url()
        await migrate_dsn(dsn)  # the audit table, if no worker has migrated yet
        pool = await create_pool(dsn, max_size=settings.db_pool_size)
        temporal = await connect_temporal(settings)
        hub = ProgressHub(temporal, pool, web.api_progress_poll_seconds)
        app.state.server = ServerState(
            settings=settings, web=web, keys=web.parsed_keys(), pool=pool, temporal=temporal,
            templates=build_templates(parts), hub=hub, parts=parts, pipelines=pipelines)
        try:
            yield
        finally:
            await hub.close()
            await pool.close()

    app = FastAPI(
        title="pipeworks", version="1", lifespan=lifespan,
        description="Start, watch and cancel pipeline runs; read their results. Every "
                    "route but /healthz needs `Authorization: Bearer <key>` (a key of "
                    "PIPEWORKS_API_KEYS); starting and cancelling need the operator role.",
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    problems.install(app)
    app.add_middleware(SecurityAndAccessLog)

    @app.get("/healthz", tags=["health"], summary="Liveness of the API itself")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Swagger UI from our own static files: no CDN. Its page starts it with an
        # inline script, allowed on this page only.
        page = get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json", title="pipeworks API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            # Offline: no spec validator from the internet.
            swagger_ui_parameters={"validatorUrl": None})
        page.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
        return page

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(api_runs.router)
    api.include_router(api_runs.operations)
    for part in parts.values():
        if part.api is not None:
            api.include_router(part.api)
    app.include_router(api)
    app.include_router(sessions.router)
    app.include_router(pages.router)
    app.include_router(pages.operations)
    for part in parts.values():
        if part.pages is not None:
            app.include_router(part.pages)
    for name, part in parts.items():
        if part.static is not None:
            app.mount(f"/static/{name}", StaticFiles(directory=part.static),
                      name=f"static-{name}")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
