"""The dashboard in the owner's language (issue 16), on the real service: an owner whose business's main
language is Spanish (es-MX) reads the overview, the calls list, the settings and a form error in Spanish, with
dates worded by Babel on the business's clock; an English business on the same server still reads English.
One server for the module."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from babel.dates import format_skeleton

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.engine import Database
from app.settings import load_settings
from tests.support.dashboard import seed_call
from tests.support.data import create_owner
from tests.support.server import RunningServer, base_env, run_server

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CALL_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@dataclass
class World:
    server: RunningServer
    spanish: UUID
    english: UUID


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("pages-languages")
    with run_server(base_env(data_dir)) as server:

        async def seed() -> tuple[UUID, UUID]:
            db = Database(load_settings(server.env))
            try:
                es_user, es_business = await create_owner(db, name="Estética Lupita", timezone="America/Mexico_City",
                                                          languages=["es-MX", "en-US"])
                en_user, en_business = await create_owner(db, name="Sam's Salon", timezone="America/New_York")
                for business in (es_business, en_business):
                    await seed_call(db, business.id, started_at=CALL_AT, summary="Quiere una cita el martes.")
                return es_user.id, en_user.id
            finally:
                await db.dispose()

        spanish, english = asyncio.run(seed())
        yield World(server, spanish, english)
        log = server.log()
        assert "Traceback" not in log, log[-5000:]


def _client(w: World, user_id: UUID) -> httpx.Client:
    signer = SessionSigner(load_settings(w.server.env).session_secrets)
    return httpx.Client(base_url=w.server.url, cookies={COOKIE_NAME: signer.sign(user_id)}, follow_redirects=False,
                        timeout=30)


def _bad_settings(client: httpx.Client) -> httpx.Response:
    token = _META.search(client.get("/settings").text).group(1)  # type: ignore[union-attr]
    return client.post("/settings", data={
        "_csrf_token": token, "name": "", "timezone": "America/Mexico_City", "voice": "marin",
        "max_call_minutes": "10", "hours_mon": "9xm-5pm", "service_name": "Corte", "service_minutes": "30",
        "service_price": "250"})


def test_a_spanish_business_reads_its_dashboard_in_spanish(world: World) -> None:
    with _client(world, world.spanish) as owner:
        overview = owner.get("/")
        assert overview.status_code == 200
        text = overview.text
        assert '<html lang="es">' in text
        assert "Últimas llamadas" in text and "Requiere tu atención" in text and ">Configuración</a>" in text
        assert ">Completada</span>" in text  # the status badge, from the macros imported with the page's context
        assert "Latest calls" not in text and ">Settings</a>" not in text
        month = format_skeleton("yMMMM", datetime.now(ZoneInfo("America/Mexico_City")), locale="es_MX")
        assert f"<h2>{month}</h2>" in text  # the month's name in Spanish (Babel), not strftime's English

        calls = owner.get("/calls").text
        assert "Exportar CSV" in calls and "Buscar en transcripciones y números" in calls
        local = CALL_AT.astimezone(ZoneInfo("America/Mexico_City"))
        shown = f"{format_skeleton('MMMd', local, locale='es_MX')}, {local:%H:%M}"
        assert f">{shown}</a>" in calls  # the business's clock, worded in Spanish
        assert "Quiere una cita el martes." in calls  # the summary stays as written

        settings = owner.get("/settings").text
        assert "Nombre del negocio" in settings and "Horario de atención" in settings and "lunes" in settings

        refused = _bad_settings(owner)
        page = refused.text
        assert "Escribe el nombre de tu negocio." in page
        assert "Aún no se guardó nada: corrige 2 puntos." in page
        # A handler's message with a handler's message inside, both in Spanish: the day and the parse error.
        assert "lunes: no se pudo leer la hora &#39;9xm&#39; en &#39;9xm-5pm&#39;" in page
        assert "Enter your business" not in page and "Nothing was saved" not in page

        test_call = owner.get("/test").text  # the page and the words its script shows while a call runs
        assert "<h1>Llamada de prueba</h1>" in test_call and "Escuchando" in test_call

        missing = owner.get("/calls/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and "No encontrado" in missing.text and "Volver al panel" in missing.text


def test_an_english_business_on_the_same_server_still_reads_english(world: World) -> None:
    with _client(world, world.english) as owner:
        text = owner.get("/").text
        assert '<html lang="en">' in text and "Latest calls" in text and ">Settings</a>" in text
        assert "Últimas llamadas" not in text
        assert "Business name" in owner.get("/settings").text
        page = _bad_settings(owner).text
        assert "Enter your business&#39;s name." in page and "Nothing was saved yet: please fix 2 items." in page
        assert "Monday: couldn&#39;t read the time &#39;9xm&#39; in &#39;9xm-5pm&#39;" in page
        assert "data-words" not in owner.get("/test").text  # English: the script's own words
        missing = owner.get("/calls/00000000-0000-0000-0000-000000000000").text
        assert "Not found" in missing and "Back to the dashboard" in missing
