"""Pages rendered in slices, so a big page never holds the event loop that carries live calls' audio.

Litestar's `Template` renders the whole page in one synchronous call. The billing page's 200 per-call rows
at 100,000 calls take ~20-40 ms of Jinja on a quiet core and ~110 ms on a loaded one, and every live call's
frames wait behind it (the tail `bench/bench_pages_under_load.py` measures). `SlicedTemplate` walks Jinja's
`generate()` instead and hands the loop back every `SLICE_SECONDS` of rendering; the page still goes out as
one body, so Content-Length, compression and the caching middleware see what they always saw.

Also here: the cache of compiled templates that start-up's warm-up (app.main) loads them from.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from jinja2 import FileSystemBytecodeCache
from jinja2.bccache import Bucket
from litestar.enums import MediaType
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response import Template
from litestar.response.base import ASGIResponse

if TYPE_CHECKING:
    from jinja2 import Template as JinjaTemplate
    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.types import Receive, Scope, Send, TypeEncodersMap

log = logging.getLogger(__name__)

# Longest stretch of rendering between two turns of the loop: about a tenth of a 20 ms audio frame's budget.
SLICE_SECONDS = 0.002
# Chunks rendered between two looks at the clock (a chunk is one piece of template output, a few µs).
CHUNKS_PER_LOOK = 32


async def render_in_slices(template: JinjaTemplate, context: dict[str, Any]) -> str:
    """`template.render(**context)`, giving the event loop a turn every SLICE_SECONDS."""
    parts: list[str] = []
    handed_back = time.perf_counter()
    for count, chunk in enumerate(template.generate(**context), 1):
        parts.append(chunk)
        if count % CHUNKS_PER_LOOK == 0 and time.perf_counter() - handed_back >= SLICE_SECONDS:
            await asyncio.sleep(0)
            handed_back = time.perf_counter()
    return "".join(parts)


class _SlicedResponse(ASGIResponse):
    """An HTML response whose body is rendered when it is sent, in slices (its length is set then)."""

    _should_set_content_length = False

    def __init__(self, template: JinjaTemplate, context: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._template = template
        self._context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.is_head_response:
            self.body = (await render_in_slices(self._template, self._context)).encode(self.encoding)
            self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


class SlicedTemplate(Template):
    """A named Jinja template as a response, rendered in slices (see the module's docstring)."""

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        if not (engine := request.app.template_engine) or self.template_name is None:
            raise ImproperlyConfiguredException("SlicedTemplate needs the template engine and a template name")
        template = cast("JinjaTemplate", engine.get_template(self.template_name))
        return _SlicedResponse(
            template,
            self.create_template_context(request),
            background=self.background or background,
            body=b"",
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            media_type=self.media_type or media_type or MediaType.HTML,
            status_code=self.status_code or status_code,
        )


class _CompiledTemplates(FileSystemBytecodeCache):
    """Jinja's per-user cache directory of compiled templates, where writing to it is only ever an optimisation."""

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.warning("compiled template not cached: %s", type(exc).__name__)


def compiled_templates() -> FileSystemBytecodeCache | None:
    """The cache a worker (re)started on this machine loads compiled templates from, instead of compiling each
    again (~15 ms a template, ~0.6 s for all of them at start-up). Jinja keys it by template path and checks
    the source's checksum, so an edited template is compiled anew. None where no safe directory exists."""
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError) as exc:
        log.warning("no cache for compiled templates: %s", type(exc).__name__)
        return None
