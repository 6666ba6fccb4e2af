"""The libSQL async dialect against a local libSQL file and a local Hrana 3 server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.libsql_dialect import normalize_database_url
from tests.doubles.hrana_server import HranaServer

TOKEN = "test-token"

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), unique=True, nullable=False),
    Column("count", Integer),
    Column("ratio", Float),
    Column("payload", LargeBinary),
    Column("created_at", DateTime),
)
children = Table(
    "children",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("thing_id", Integer, ForeignKey("things.id"), nullable=False),
)


@pytest.fixture(scope="module")
def hrana_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HranaServer]:
    db = tmp_path_factory.mktemp("hrana") / "remote.db"
    with HranaServer(db, auth_token=TOKEN) as server:
        yield server


@pytest.fixture(params=["local", "remote"])
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, hrana_server: HranaServer
) -> AsyncIterator[AsyncEngine]:
    if request.param == "local":
        url, connect_args = normalize_database_url(f"sqlite+libsql:///{tmp_path / 'local.db'}", None)
    else:
        url, connect_args = normalize_database_url(hrana_server.url, TOKEN)
    eng = create_async_engine(url, connect_args=connect_args)
    async with eng.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.mark.asyncio
async def test_round_trips_values(engine: AsyncEngine) -> None:
    created = dt.datetime(2025, 3, 4, 5, 6, 7, 891011)
    # Beyond 32 bits; libsql 0.1.11 passes int parameters through a double, so keep below 2**53.
    big = 2**40 + 3
    async with engine.begin() as conn:
        await conn.execute(
            insert(things),
            [
                {"name": "full", "count": big, "ratio": 0.25, "payload": b"\x00\xff\x10binary",
                 "created_at": created},
                {"name": "empty", "count": None, "ratio": None, "payload": None, "created_at": None},
            ],
        )
    async with engine.connect() as conn:
        rows = (await conn.execute(select(things).order_by(things.c.id))).mappings().all()
    assert rows[0]["count"] == big
    assert rows[0]["ratio"] == 0.25
    assert rows[0]["payload"] == b"\x00\xff\x10binary"
    assert rows[0]["created_at"] == created
    assert rows[0]["name"] == "full"
    assert (rows[1]["count"], rows[1]["ratio"], rows[1]["payload"], rows[1]["created_at"]) == (None,) * 4


@pytest.mark.asyncio
async def test_commit_and_rollback(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="kept"))
    async with engine.connect() as conn:
        await conn.execute(insert(things).values(name="discarded"))
        await conn.rollback()
    async with engine.connect() as conn:
        names = (await conn.execute(select(things.c.name))).scalars().all()
    assert names == ["kept"]


@pytest.mark.asyncio
async def test_unique_violation_raises_integrity_error(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="dup"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(things).values(name="dup"))
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(things))).scalar_one() == 1


@pytest.mark.asyncio
async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(children).values(thing_id=12345))


@pytest.mark.asyncio
async def test_concurrent_writers(engine: AsyncEngine) -> None:
    async def write(i: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(things).values(name=f"w{i}", count=i))

    await asyncio.gather(*(write(i) for i in range(20)))
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(things))).scalar_one() == 20


# --- the Hrana test server itself ---------------------------------------------------------------


def _pipeline(server: HranaServer, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{server.http_url}/v3/pipeline", data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_hrana_server_checks_bearer_token(hrana_server: HranaServer) -> None:
    body = {"baton": None, "requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}, {"type": "close"}]}
    assert _pipeline(hrana_server, body, "wrong")[0] == 401
    assert _pipeline(hrana_server, body, None)[0] == 401
    status, payload = _pipeline(hrana_server, body, TOKEN)
    assert status == 200
    assert payload["results"][0]["response"]["result"]["rows"] == [[{"type": "integer", "value": "1"}]]


def test_hrana_server_batch_conditions_and_batons(hrana_server: HranaServer) -> None:
    steps = [
        {"stmt": {"sql": "BEGIN"}},
        {"stmt": {"sql": "SELECT ?, ?, ?, ?", "args": [
            {"type": "float", "value": 1.5}, {"type": "text", "value": "x"},
            {"type": "blob", "base64": "AAE"}, {"type": "null"}]}, "condition": {"type": "ok", "step": 0}},
        {"stmt": {"sql": "SELECT no_such_column"}},
        {"stmt": {"sql": "SELECT 2"}, "condition": {"type": "ok", "step": 2}},
        {"stmt": {"sql": "ROLLBACK"}, "condition": {"type": "and", "conds": [
            {"type": "not", "cond": {"type": "is_autocommit"}}, {"type": "error", "step": 2}]}},
    ]
    status, payload = _pipeline(hrana_server, {"baton": None, "requests": [
        {"type": "batch", "batch": {"steps": steps}}, {"type": "get_autocommit"}]}, TOKEN)
    assert status == 200
    result = payload["results"][0]["response"]["result"]
    assert result["step_results"][1]["rows"] == [[
        {"type": "float", "value": 1.5}, {"type": "text", "value": "x"},
        {"type": "blob", "base64": "AAE"}, {"type": "null"},
    ]]
    assert result["step_errors"][2]["code"].startswith("SQLITE_")
    assert result["step_results"][3] is None and result["step_errors"][3] is None
    assert result["step_results"][4] is not None
    assert payload["results"][1]["response"]["is_autocommit"] is True
    baton = payload["baton"]
    assert baton
    status, payload = _pipeline(hrana_server, {"baton": baton, "requests": [{"type": "close"}]}, TOKEN)
    assert status == 200 and payload["baton"] is None
    # A baton is single-use, so replaying it must fail.
    assert _pipeline(hrana_server, {"baton": baton, "requests": []}, TOKEN)[0] == 400


# --- URL normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "token", "expected"),
    [
        ("libsql://db-org.turso.io", "t0k",
         ("sqlite+libsql://db-org.turso.io?secure=true", {"auth_token": "t0k"})),
        ("libsql://db-org.turso.io?authToken=abc", None,
         ("sqlite+libsql://db-org.turso.io?secure=true", {"auth_token": "abc"})),
        ("https://db.example:8443", None, ("sqlite+libsql://db.example:8443?secure=true", {})),
        ("http://127.0.0.1:8080", "t", ("sqlite+libsql://127.0.0.1:8080?secure=false", {"auth_token": "t"})),
        ("sqlite+libsql://127.0.0.1:9000?secure=false", "t",
         ("sqlite+libsql://127.0.0.1:9000?secure=false", {"auth_token": "t"})),
        ("sqlite+libsql://127.0.0.1:9000", None, ("sqlite+libsql://127.0.0.1:9000?secure=true", {})),
        ("sqlite+libsql:///data/app.db", "ignored", ("sqlite+libsql:///data/app.db", {})),
        ("sqlite+libsql:////abs/app.db", None, ("sqlite+libsql:////abs/app.db", {})),
        ("sqlite+aiosqlite:///./app.db", "t", ("sqlite+aiosqlite:///./app.db", {})),
        ("postgresql+asyncpg://u:p@h/db", None, ("postgresql+asyncpg://u:p@h/db", {})),
    ],
)
def test_normalize_database_url(url: str, token: str | None, expected: tuple[str, dict[str, str]]) -> None:
    assert normalize_database_url(url, token) == expected


@pytest.mark.asyncio
async def test_isolation_levels(engine: AsyncEngine) -> None:
    # AUTOCOMMIT is emulated (libsql's isolation_level is read-only); switching back must work too,
    # including remotely where libsql rejects PRAGMA read_uncommitted.
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(insert(things).values(name="auto"))
        await auto.rollback()  # nothing to undo: the insert was committed already
    async with engine.connect() as conn:
        serial = await conn.execution_options(isolation_level="SERIALIZABLE")
        await serial.execute(insert(things).values(name="tx"))
        await serial.rollback()
    async with engine.connect() as conn:
        assert (await conn.execute(select(things.c.name))).scalars().all() == ["auto"]
