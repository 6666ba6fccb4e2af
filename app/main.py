"""The Litestar application: `create_app(settings)` for tests, `app` for granian and the litestar CLI."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Sequence
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from jinja2 import Environment
from litestar import Litestar, Request, Response
from litestar.config.compression import CompressionConfig
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
from app.auth.access import owner_required
from app.auth.cookies import SessionSigner
from app.auth.deps import NeedsOnboarding, provide_business, provide_owner, provide_owner_scope
from app.billing.pricing import warm_price_table
from app.cli import ReceptionistCLIPlugin
from app.db.engine import Database
from app.error_reporting import init_error_reporting
from app.i18n.languages import warm_locale_data
from app.metrics import LoopLagWatcher
from app.settings import ROOT, Settings, SettingsError, load_settings
from app.web.caching import CachingMiddleware, asset_url
from app.web.errors import error_response
from app.web.health import health
from app.web.logs import configure_logging
from app.web.metrics import metrics
from app.web.page_turns import PageTurns
from app.web.proxy import ProxyHeadersMiddleware
from app.web.raw_frames import RawFrames
from app.web.rendering import compiled_templates
from app.web.request_id import RequestIdMiddleware
from app.web.security_headers import SecurityHeaders

# Paths with their own authentication (signatures, single-use tokens) or none by design.
CSRF_EXEMPT = ["^/twilio/", "^/billing/polar/webhook", "^/health", "^/metrics", "^/ws/", "^/ops/",
               "^/google/calendar/notify$"]


def _route_handlers() -> list[ControllerRouterHandler]:
    from app.auth.routes import ROUTES as auth_routes
    from app.billing.routes import ROUTES as billing_routes
    from app.calendar.routes import ROUTES as calendar_routes
    from app.dashboard.routes import ROUTES as dashboard_routes
    from app.outbound.pages import ROUTES as outbound_pages
    from app.outbound.routes import ROUTES as outbound_routes
    from app.telephony.fallback_routes import ROUTES as fallback_routes
    from app.telephony.message_status import ROUTES as message_status_routes
    from app.telephony.move_routes import ROUTES as move_routes
    from app.telephony.routes import ROUTES as telephony_routes
    from app.voice.routes import ROUTES as voice_routes
    from app.web.drain import ROUTES as drain_routes
    from app.web.icons import ROUTES as icon_routes

    static = create_static_files_router(path="/static", directories=[ROOT / "static"], name="static")
    return [
        health, metrics, static, *icon_routes, *auth_routes, *dashboard_routes, *voice_routes, *telephony_routes,
        *fallback_routes, *drain_routes, *billing_routes, *calendar_routes, *message_status_routes,
        *move_routes,
        *outbound_routes, *outbound_pages,  # issue 16
    ]


def _lifecycle_hooks() -> tuple[Sequence[Callable[[Litestar], Any]], Sequence[Callable[[Litestar], Any]]]:
    from app.billing.routes import start_billing, stop_billing
    from app.calendar.runtime import start_calendar, stop_calendar
    from app.inbox.runtime import start_inbox, stop_inbox
    from app.outbound.runtime import start_outbound, stop_outbound
    from app.telephony.line import start_telephony
    from app.voice.runtime import start_runtime, stop_runtime

    # Billing and the inbox register their job kinds on the queue the call runtime builds, so they start after it.
    return ([start_runtime, start_telephony, start_calendar, start_inbox, start_billing, start_outbound],
            [stop_outbound, stop_billing, stop_inbox, stop_calendar, stop_runtime])


# The collector's youngest generation runs every 5,000 net container allocations, not CPython's 700. A page at
# 100,000 calls holds tens of thousands of objects for its 100-300 ms; at 700 they outlived two young collections,
# were promoted, and every ~11,000 promotions forced a full collection (84-122 ms, the loop and every call's audio
# paused). bench/bench_pages_under_load.py, 20 calls + 3 owner tabs, two runs each: frame p99 up 179-320 ms with
# one full collection per run at 700; 39-41 ms and none at 5,000 (young collections ≤ 19 ms, one 42-56 ms);
# the same runs' calls alone, the floor: 12-15 ms.
GC_THRESHOLDS = (5000, 10, 10)


def _load_what_first_use_would(engine: Environment) -> None:
    """What a worker would otherwise load on first use, on the event loop, while calls stream: genai-prices'
    table (~0.5-1.5 s, ~15,000 objects), every template (~15 ms each to compile, ~0.5 ms from the cache of
    compiled templates), each supported language's CLDR data (~10 ms each)."""
    warm_price_table()
    for name in engine.list_templates():
        engine.get_template(name)
    warm_locale_data()


async def _freeze_startup_heap(app: Litestar) -> None:
    # Everything imported, built and loaded at start-up lives for the whole process. Moving it out of the
    # collector's view keeps full collections short: the event loop, and every live call's audio, waits
    # while one runs (~120 ms on a 20-call worker before the freeze; the price table and templates loaded
    # after it still added 60-140 ms ones under load, so they are loaded first, off the loop).
    await asyncio.to_thread(_load_what_first_use_would, app.template_engine.engine)  # type: ignore[union-attr]
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _onboarding_redirect(request: Request, _exc: NeedsOnboarding) -> Response:
    if request.headers.get("hx-request"):
        return Response(content="", headers={"HX-Redirect": "/onboarding"})
    return Redirect(path="/onboarding")


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.secret_values())
    init_error_reporting(settings)
    db = Database(settings)
    lag = LoopLagWatcher()
    signer = SessionSigner(settings.session_secrets)
    on_startup, on_shutdown = _lifecycle_hooks()

    async def dispose_db(_app: Litestar) -> None:
        await db.dispose()

    def watch_lag(_app: Litestar) -> None:
        lag.start()

    async def stop_watching_lag(_app: Litestar) -> None:
        await lag.stop()

    template_config = TemplateConfig(directory=ROOT / "templates", engine=JinjaTemplateEngine)
    app = Litestar(
        route_handlers=_route_handlers(),
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
            "db": Provide(lambda: db, sync_to_thread=False, use_cache=True),
            "signer": Provide(lambda: signer, sync_to_thread=False, use_cache=True),
            "owner": Provide(provide_owner),
            "business": Provide(provide_business),
            "owner_scope": Provide(provide_owner_scope),
        },
        # Deny by default: every route needs a signed-in owner unless app.auth.access.PUBLIC_PATHS lists it.
        guards=[owner_required],
        plugins=[SQLAlchemyPlugin(config=db.config), HTMXPlugin(), GranianPlugin(), ReceptionistCLIPlugin()],
        template_config=template_config,
        csrf_config=CSRFConfig(
            secret=settings.session_secrets[0],
            cookie_secure=settings.secure_cookies,
            cookie_samesite="lax",
            exclude=CSRF_EXEMPT,
        ),
        # Outermost first, so the rate limits and anything that logs the client see it, not the proxy.
        middleware=[ProxyHeadersMiddleware.from_settings(settings), RequestIdMiddleware(), PageTurns(),
                    CachingMiddleware()],
        # Brotli where the browser takes it, gzip otherwise; audio (already dense, and ranged) and event
        # streams (must flush each event) are left alone. HTTP only: WebSocket frames never pass through it.
        compression_config=CompressionConfig(
            # gzip (clients without brotli) at zlib's default 6, not Litestar's 9: ~1.5 ms less on the loop for an
            # 80 KB page for ~1% more bytes (brotli's 5 is ~1.5 ms already).
            backend="brotli", brotli_gzip_fallback=True, minimum_size=500, gzip_compress_level=6,
            exclude=["^/calls/[^/]+/recording", "/events$", "^/static/voices/"],
        ),
        exception_handlers={
            NeedsOnboarding: _onboarding_redirect,
            HTTPException: error_response,
            Exception: error_response,
        },
        on_startup=[*on_startup, _freeze_startup_heap, watch_lag],
        on_shutdown=[stop_watching_lag, *on_shutdown, dispose_db],
        state=State({"settings": settings, "db": db, "signer": signer}),
        # No public API schema: the JSON routes are internal to the pages and the call page.
        openapi_config=None,
        # Logging is app.web.logs' (one format with the request id, and the redacting formatter); Litestar's
        # default config would replace the root handlers with its own, unredacted.
        logging_config=None,
        debug=False,
    )
    from app.dashboard.outcome_words import FILTERS as inbox_filters

    template_config.engine_instance.engine.filters.update(inbox_filters)
    template_config.engine_instance.engine.bytecode_cache = compiled_templates()
    from app.dashboard.language_settings import FILTERS as language_filters  # issue 16

    template_config.engine_instance.engine.filters.update(language_filters)
    from app.i18n.pages import configure_environment  # issue 16: pages in the owner's language

    configure_environment(template_config.engine_instance.engine)
    # Around Litestar's whole handler (not in `middleware`, which runs per route) so that unrouted 404s
    # carry the headers too; it passes WebSocket scopes straight through.
    app.asgi_handler = RawFrames(SecurityHeaders(app.asgi_handler))  # RawFrames: see app/web/raw_frames.py
    template_config.engine_instance.engine.globals.update(
        version=__version__, google_configured=settings.google_configured, asset=asset_url
    )
    return app


def _app_from_environment() -> Litestar:
    try:
        return create_app(load_settings())
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = _app_from_environment()
