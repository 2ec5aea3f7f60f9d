"""The Bitcoin reconciliation's part of `pipeworks serve`: the findings API
(`GET /api/v1/btc/findings`) and the reconciliation page (`/btc`), with its template and
script."""

from __future__ import annotations

from pathlib import Path

from pipeworks.registry import WebParts

HERE = Path(__file__).parent


def web_parts() -> WebParts:
    """The reconciliation's part of the server (Pipeline.web): imports FastAPI only when
    called, so the CLI never loads the web stack."""
    from starters.btc.web.routes import api_router, pages_router

    # The template is `btc/findings.html` under `templates`, so that it cannot collide
    # with another pipeline's; the kernel serves `static` at /static/btc_reconcile/.
    return WebParts(api=api_router, pages=pages_router, templates=HERE / "templates",
                    static=HERE / "static", nav=(("Reconciliation", "/btc"),),
                    run_links=lambda workflow_id: [("Reconciliation findings", "/btc")]
                    if workflow_id.startswith("btc-") else [])
