"""The review desk's pages under ``/ui/``: sign-in, queue, claim, patient. Server-rendered Jinja2 shells; the
data comes from the JSON API, called from the browser with the user's own key (kept in ``sessionStorage``,
sent as ``X-API-Key``; never in a URL, a cookie or a log), so every read goes through the same routes, roles,
rate limit and access log as any other client. The pages hold no business logic: the checks a page re-runs
while a clerk types are the product's (``POST /v1/claims/{id}/check``, ``api.ui.review_api``).

Assets are vendored in ``api/ui/static`` and served from a fixed list (no CDN, no path from the request).

Entity highlights are our own markup (``static/patient.js``: ``<mark class="ent t-Disease a-negated">`` nested),
not displaCy. Measured on the browser test's record (9 entities, one nested in another), displaCy's manual
render takes 1.25 ms a document for style ``ent`` (2.7 kB, 17 inline ``style`` attributes, 8 of 9 entities: the
nested one is dropped) and 1.87 ms for style ``span`` (11.7 kB, 83 inline styles, all 9); the page's own markup
renders all 9, nested, in a few milliseconds in the browser from the EMR view's JSON. What decided it: displaCy's
HTML carries its colours as inline styles, which this CSP (``style-src 'self'``) refuses, and it can show an
assertion only as label text, not as the struck-through / dashed / marked styling the clinicians' page needs; it
would also put spaCy on the request path for markup the browser can build from data the API already serves.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.problems import ApiProblem
from api.schemas import CLAIM_ID_PATTERN, PID_PATTERN
from api.ui import review_api

HERE = FsPath(__file__).parent
STATIC = HERE / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES}
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

router = APIRouter(include_in_schema=False)
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                                       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"}


def _page(name: str, **context) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context), headers=_HEADERS)


@router.get("/ui", response_class=HTMLResponse)
@router.get("/ui/", response_class=HTMLResponse)
def home():
    return RedirectResponse("/ui/queue", status_code=303)


@router.get("/ui/login", response_class=HTMLResponse)
def login():
    return _page("login.html", page="login")


@router.get("/ui/queue", response_class=HTMLResponse)
def queue():
    return _page("queue.html", page="queue")


@router.get("/ui/claims/{claim_id}", response_class=HTMLResponse)
def claim(claim_id: Annotated[str, Path(pattern=CLAIM_ID_PATTERN)]):
    return _page("claim.html", page="claim", claim_id=claim_id)


@router.get("/ui/patients/{pid}", response_class=HTMLResponse)
def patient(pid: Annotated[str, Path(pattern=PID_PATTERN)]):
    return _page("patient.html", page="patient", pid=pid)


@router.get("/ui/static/{name}")
def static(name: str, request: Request):
    path = ASSETS.get(name)
    if path is None:
        raise ApiProblem(404, "not-found", "no such asset")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


def register(app) -> None:
    """Add the pages and their JSON calls to ``app`` (the one line ``api.app.create_app`` calls). Their routes
    join the app's route templates where it keeps them, so metrics and the access log name them by route."""
    app.include_router(router)
    app.include_router(review_api.router)
    templates = getattr(app.state, "route_templates", None)
    if isinstance(templates, dict):
        templates.update({r.endpoint: r.path for r in (*router.routes, *review_api.router.routes)})
