"""`/favicon.ico` and the web app manifest's home: browsers ask for these at the site root on every page."""

from __future__ import annotations

from litestar import get
from litestar.response import File

from app.settings import ROOT

DAY = 24 * 3600


@get("/favicon.ico", name="favicon", include_in_schema=False, sync_to_thread=False)
def favicon() -> File:
    # Not versioned (browsers ask for this exact path), so cached for a day rather than a year.
    return File(path=ROOT / "static" / "favicon.ico", media_type="image/x-icon",
                content_disposition_type="inline", headers={"Cache-Control": f"public, max-age={DAY}"})


ROUTES = [favicon]
