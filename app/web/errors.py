"""Errors become a JSON body on API routes and a readable page on HTML routes; never a stack trace."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.auth.access import business_seen
from app.db.services import NotFound, ServiceError
from app.i18n.languages import Language, for_owner
from app.i18n.pages import render_context
from app.i18n.text import tr
from app.web.rendering import SlicedTemplate
from app.web.request_id import request_id_var

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/twilio/", "/health", "/billing/polar/", "/ws/")

TITLES = {
    400: tr("That request didn't look right"),
    401: tr("Please sign in"),
    403: tr("Not allowed"),
    404: tr("Not found"),
    405: tr("Not allowed"),
    409: tr("That conflicts with something already saved"),
    429: tr("Too many requests"),
    500: tr("Something went wrong on our side"),
    503: tr("Temporarily unavailable"),
}


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(JSON_PREFIXES) or (
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get(
            "accept", ""
        )
    )


def _status_and_detail(exc: Exception) -> tuple[int, str, object]:
    if isinstance(exc, NotFound):
        return 404, exc.message, None
    if isinstance(exc, ServiceError):
        return 400, exc.message, None
    if isinstance(exc, ValidationException):
        return 400, exc.detail, exc.extra
    if isinstance(exc, HTTPException):
        return exc.status_code, exc.detail, None
    return HTTP_500_INTERNAL_SERVER_ERROR, TITLES[500], None


def _reader(request: Request) -> Language:
    # Signed-out pages are English; a signed-in owner's error page is in their business's language.
    business = business_seen(request)
    return for_owner(business.languages if business is not None else None)


def error_response(request: Request, exc: Exception) -> Response:
    status, detail, extra = _status_and_detail(exc)
    rid = request_id_var.get()
    if rid == "-":  # unrouted paths never reach the request-id middleware
        rid = uuid.uuid4().hex[:16]
    if status >= 500:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, NotAuthorizedException) and not wants_json(request):
        target = "/auth/login?next=" + quote(request.url.path)
        if request.headers.get("hx-request"):
            return Response(content="", status_code=200, headers={"HX-Redirect": target})
        return Redirect(path=target)
    headers = {**(getattr(exc, "headers", None) or {}), "X-Request-ID": rid}
    if wants_json(request):
        body: dict[str, object] = {"error": detail, "status": status, "request_id": rid}
        if extra:
            body["details"] = extra
        return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)
    return SlicedTemplate(
        template_name="error.html",
        context={"status": status, "title": TITLES.get(status, tr("Error")), "detail": detail, "request_id": rid,
                 **render_context(_reader(request))},
        status_code=status,
        headers=headers,
    )
