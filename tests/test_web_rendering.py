"""Pages rendered in slices (app/web/rendering.py): the same page as Litestar's own rendering, one body with its
length, the loop handed back while a big page renders, HEAD and template errors answered as before."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from jinja2 import DictLoader, Environment, FileSystemLoader
from litestar import Litestar, get, route
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from litestar.testing import TestClient

from app.web import rendering
from app.web.rendering import SlicedTemplate, _CompiledTemplates, render_in_slices

ROWS = "<table>{% for r in rows %}<tr><td>{{ r.n }}</td><td>{{ r.label | upper }}</td></tr>{% endfor %}</table>"


def _client(tmp_path: Path) -> TestClient[Litestar]:
    (tmp_path / "rows.html").write_text("<h1>{{ title }}</h1>" + ROWS)
    (tmp_path / "broken.html").write_text("{{ missing.attribute.deeper }}")
    context = {"title": "Calls & costs", "rows": [{"n": n, "label": f"row {n}"} for n in range(3000)]}

    @route("/sliced", http_method=["GET", "HEAD"], sync_to_thread=False)
    def sliced() -> Template:
        return SlicedTemplate(template_name="rows.html", context=context)

    @get("/whole", sync_to_thread=False)
    def whole() -> Template:
        return Template(template_name="rows.html", context=context)

    @get("/broken", sync_to_thread=False)
    def broken() -> Template:
        return SlicedTemplate(template_name="broken.html", context={"missing": None})

    app = Litestar(route_handlers=[sliced, whole, broken], debug=False,
                   template_config=TemplateConfig(directory=tmp_path, engine=JinjaTemplateEngine))
    return TestClient(app)


def test_a_sliced_page_is_the_page_litestar_renders_as_one_body_with_its_length(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        sliced, whole = client.get("/sliced"), client.get("/whole")
    assert sliced.status_code == whole.status_code == 200
    assert sliced.content == whole.content and sliced.text.startswith("<h1>Calls &amp; costs</h1><table>")
    assert sliced.headers["content-length"] == str(len(sliced.content))
    assert sliced.headers["content-type"] == whole.headers["content-type"] == "text/html; charset=utf-8"


def test_head_gets_the_headers_and_no_body_and_a_template_error_is_a_500_not_a_cut_response(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        headed = client.head("/sliced")
        broken = client.get("/broken")
    assert headed.status_code == 200 and headed.content == b""
    assert broken.status_code == 500


async def test_the_loop_gets_turns_while_a_big_page_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendering, "SLICE_SECONDS", 0.001)
    template = Environment(loader=DictLoader({"rows.html": ROWS}), autoescape=True).get_template("rows.html")
    context = {"rows": [{"n": n, "label": f"row {n}"} for n in range(20_000)]}
    started = time.perf_counter()
    whole = template.render(**context)
    rendering_takes = time.perf_counter() - started
    assert rendering_takes > 0.005, "the page must take several slices for this test to mean anything"
    turns = 0

    async def other_work() -> None:  # what a live call's pumps are: tasks waiting for their turn
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    beside = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = turns
    try:
        sliced = await render_in_slices(template, context)
    finally:
        beside.cancel()
    assert sliced == whole
    assert turns - before >= 3  # handed back several times, not once at the end


def test_compiled_templates_are_reused_by_the_next_worker_and_an_edited_one_is_compiled_anew(tmp_path: Path) -> None:
    pages, cache_dir = tmp_path / "templates", tmp_path / "cache"
    pages.mkdir()
    cache_dir.mkdir()
    (pages / "page.html").write_text("<p>{{ n }} calls</p>")

    def worker() -> Environment:
        return Environment(loader=FileSystemLoader(pages), autoescape=True,
                           bytecode_cache=_CompiledTemplates(str(cache_dir)))

    assert worker().get_template("page.html").render(n=3) == "<p>3 calls</p>"
    assert len(list(cache_dir.iterdir())) == 1
    compiled: list[str] = []
    later = worker()
    original_compile = later.compile
    later.compile = lambda *a, **k: compiled.append("x") or original_compile(*a, **k)  # type: ignore[method-assign]
    assert later.get_template("page.html").render(n=4) == "<p>4 calls</p>" and compiled == []
    (pages / "page.html").write_text("<p>{{ n }} calls today</p>")
    assert worker().get_template("page.html").render(n=5) == "<p>5 calls today</p>"


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_page(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    pages = tmp_path / "templates"
    pages.mkdir()
    (pages / "page.html").write_text("<p>ok</p>")
    gone = tmp_path / "gone"
    gone.mkdir()
    env = Environment(loader=FileSystemLoader(pages), bytecode_cache=_CompiledTemplates(str(gone)))
    gone.rmdir()
    assert env.get_template("page.html").render() == "<p>ok</p>"
    assert "compiled template not cached" in caplog.text
