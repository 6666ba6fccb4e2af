"""The owner dashboard's routes, gathered from one small module per page."""

from litestar.types import ControllerRouterHandler

from app.dashboard import (
    appointments,
    audit_page,
    billing,
    calls,
    customers,
    engine_settings,
    language_settings,
    messages,
    notification_settings,
    number_settings,
    outbox,
    overview,
    sessions,
    settings_pages,
    voicemail,
)

ROUTES: list[ControllerRouterHandler] = [
    *overview.ROUTES,
    *calls.ROUTES,
    *sessions.ROUTES,
    *appointments.ROUTES,
    *customers.ROUTES,
    *billing.ROUTES,
    *settings_pages.ROUTES,
    *number_settings.ROUTES,
    *messages.ROUTES,
    *notification_settings.ROUTES,
    *voicemail.ROUTES,
    *audit_page.ROUTES,
    *engine_settings.ROUTES,
    *outbox.ROUTES,
    *language_settings.ROUTES,
]
