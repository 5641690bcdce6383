"""`/docs`: the app's OpenAPI schema as one plain HTML page, rendered on the server.

FastAPI's own pages load Swagger UI or ReDoc from a CDN and start them with inline script; this machine
has no internet and the review UI's Content-Security-Policy forbids inline script, so the page is built
here from `app.openapi()`: every operation with its parameters, body and answers, and a link to
`/openapi.json` for tools.

>>> from fastapi import FastAPI
>>> app = FastAPI(title="demo")
>>> _ = app.get("/ping", summary="Ping")(lambda: "pong")
>>> "<h2>GET /ping</h2>" in render_docs(app.openapi())
True
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse


def _parameters(op: dict) -> str:
    rows = [
        f"<li><code>{escape(p['name'])}</code> ({escape(p['in'])}{', required' if p.get('required') else ''})"
        f"{': ' + escape(p['description']) if p.get('description') else ''}</li>"
        for p in op.get("parameters", [])
    ]
    body = op.get("requestBody")
    if body:
        types = ", ".join(escape(t) for t in body.get("content", {}))
        rows.append(f"<li>body ({types}){': ' + escape(body['description']) if body.get('description') else ''}</li>")
    return f"<h3>Request</h3><ul>{''.join(rows)}</ul>" if rows else ""


def _operation(path: str, method: str, op: dict) -> str:
    answers = "".join(
        f"<li><code>{escape(code)}</code> {escape(r.get('description', ''))}</li>"
        for code, r in op.get("responses", {}).items()
    )
    return (
        f"<section><h2>{escape(method.upper())} {escape(path)}</h2>"
        f"<p><strong>{escape(op.get('summary', ''))}</strong></p><p>{escape(op.get('description', ''))}</p>"
        f"{_parameters(op)}<h3>Answers</h3><ul>{answers}</ul></section>"
    )


def render_docs(schema: dict) -> str:
    info = schema.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    operations = "".join(
        _operation(path, method, op) for path, item in schema.get("paths", {}).items() for method, op in item.items()
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} API</title></head>'
        f'<body><h1>{escape(title)} API</h1><p>Machine-readable schema: <a href="/openapi.json">/openapi.json</a>'
        f"</p>{operations}</body></html>"
    )


def make_docs_router(app: FastAPI) -> APIRouter:
    router = APIRouter()

    @router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(app.openapi()))

    return router
