"""The calendar room's routes: Settings -> Calendar and Google's push endpoint, the owner's calendar pages."""

from litestar.types import ControllerRouterHandler

from app.calendar import pages, settings_routes

ROUTES: list[ControllerRouterHandler] = [*settings_routes.ROUTES, *pages.ROUTES]
