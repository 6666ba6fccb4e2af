"""Byte ranges (RFC 9110 §14) for served files, so audio players can seek: one range per request.

Invariant: a request with a satisfiable `Range` gets 206 with exactly those bytes and a `Content-Range`;
an unsatisfiable one gets 416 naming the size; anything else (no header, several ranges, a unit other than
bytes) gets the whole file with 200. The file is read in chunks off the event loop, never whole.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

from litestar import Response
from litestar.response import Stream

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"range outside 0-{size - 1}")
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None to send everything; raises RangeNotSatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None  # several ranges or another unit: the whole file is a valid answer
    first_text, last_text = match.groups()
    if not first_text:  # "bytes=-500": the last 500 bytes
        length = int(last_text)
        if length == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - length), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable(size)
    return first, last


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)


async def _chunks(path: Path, first: int, last: int) -> AsyncIterator[bytes]:
    position = first
    while position <= last:
        data = await asyncio.to_thread(_read, path, position, min(CHUNK, last - position + 1))
        if not data:
            return
        position += len(data)
        yield data


def ranged_file(
    path: Path, range_header: str | None, *, media_type: str, headers: dict[str, str]
) -> Response[object]:
    size = path.stat().st_size
    base = {"Accept-Ranges": "bytes", **headers}
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return Response(content=b"", status_code=416, headers={**base, "Content-Range": f"bytes */{size}"})
    first, last = wanted if wanted is not None else (0, size - 1)
    return Stream(
        _chunks(path, first, last),
        status_code=206 if wanted is not None else 200,
        media_type=media_type,
        headers={
            **base, "Content-Length": str(last - first + 1),
            **({"Content-Range": f"bytes {first}-{last}/{size}"} if wanted is not None else {}),
        },
    )
