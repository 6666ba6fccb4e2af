"""HTTP and WebSocket routes of this room."""

from litestar.types import ControllerRouterHandler

ROUTES: list[ControllerRouterHandler] = []
