"""The Litestar application: `create_app(settings)` for tests, `app` for granian and the litestar CLI."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler
from litestar_granian import GranianPlugin

from app import __version__
from app.auth.cookies import SessionSigner
from app.auth.deps import NeedsOnboarding, provide_business, provide_owner
from app.db.engine import Database
from app.settings import ROOT, Settings, SettingsError, load_settings
from app.web.errors import error_response
from app.web.health import health
from app.web.logs import configure_logging
from app.web.proxy import ProxyHeadersMiddleware
from app.web.request_id import RequestIdMiddleware

# Paths with their own authentication (signatures, single-use tokens) or none by design.
CSRF_EXEMPT = ["^/twilio/", "^/billing/polar/webhook", "^/health", "^/ws/"]


def _route_handlers() -> list[ControllerRouterHandler]:
    from app.auth.routes import ROUTES as auth_routes
    from app.billing.routes import ROUTES as billing_routes
    from app.dashboard.routes import ROUTES as dashboard_routes
    from app.telephony.routes import ROUTES as telephony_routes
    from app.voice.routes import ROUTES as voice_routes

    static = create_static_files_router(path="/static", directories=[ROOT / "static"], name="static")
    return [health, static, *auth_routes, *dashboard_routes, *voice_routes, *telephony_routes, *billing_routes]


def _lifecycle_hooks() -> tuple[Sequence[Callable[[Litestar], Any]], Sequence[Callable[[Litestar], Any]]]:
    from app.billing.routes import start_billing, stop_billing
    from app.voice.runtime import start_runtime, stop_runtime

    # Billing registers its job kinds on the queue the call runtime builds, so it starts after it.
    return [start_runtime, start_billing], [stop_runtime, stop_billing]


def _freeze_startup_heap(_app: Litestar) -> None:
    # Everything imported and built at start-up lives for the whole process. Moving it out of the
    # collector's view keeps full collections short: one measured at ~120 ms on a 20-call worker, and
    # every call's audio waits while the event loop is paused for it.
    gc.collect()
    gc.freeze()


def _onboarding_redirect(request: Request, _exc: NeedsOnboarding) -> Response:
    if request.headers.get("hx-request"):
        return Response(content="", headers={"HX-Redirect": "/onboarding"})
    return Redirect(path="/onboarding")


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    db = Database(settings)
    signer = SessionSigner(settings.session_secrets)
    on_startup, on_shutdown = _lifecycle_hooks()

    async def dispose_db(_app: Litestar) -> None:
        await db.dispose()

    template_config = TemplateConfig(directory=ROOT / "templates", engine=JinjaTemplateEngine)
    app = Litestar(
        route_handlers=_route_handlers(),
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
            "db": Provide(lambda: db, sync_to_thread=False, use_cache=True),
            "signer": Provide(lambda: signer, sync_to_thread=False, use_cache=True),
            "owner": Provide(provide_owner),
            "business": Provide(provide_business),
        },
        plugins=[SQLAlchemyPlugin(config=db.config), HTMXPlugin(), GranianPlugin()],
        template_config=template_config,
        csrf_config=CSRFConfig(
            secret=settings.session_secrets[0],
            cookie_secure=settings.secure_cookies,
            cookie_samesite="lax",
            exclude=CSRF_EXEMPT,
        ),
        # Outermost first, so the rate limits and anything that logs the client see it, not the proxy.
        middleware=[ProxyHeadersMiddleware.from_settings(settings), RequestIdMiddleware()],
        exception_handlers={
            NeedsOnboarding: _onboarding_redirect,
            HTTPException: error_response,
            Exception: error_response,
        },
        on_startup=[*on_startup, _freeze_startup_heap],
        on_shutdown=[*on_shutdown, dispose_db],
        state=State({"settings": settings, "db": db, "signer": signer}),
        # No public API schema: the JSON routes are internal to the pages and the call page.
        openapi_config=None,
        debug=False,
    )
    template_config.engine_instance.engine.globals.update(
        version=__version__, google_configured=settings.google_configured
    )
    return app


def _app_from_environment() -> Litestar:
    try:
        return create_app(load_settings())
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = _app_from_environment()
