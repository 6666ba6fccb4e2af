"""Voicemails left on the fallback path (issue 11): listed on their call's page, audio played by the owner."""

from __future__ import annotations

import asyncio

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.response import File

from app.dashboard.calls import _servable_recording
from app.dashboard.common import parse_id
from app.db.owner_queries import OwnerScope
from app.settings import Settings


@get("/messages/{message_id:str}/audio", name="dashboard:message-audio")
async def message_audio(message_id: str, owner_scope: OwnerScope, settings: Settings) -> File:
    message = await owner_scope.get_message(parse_id(message_id))
    if not message.audio_path:
        raise NotFoundException("this message has no audio")
    path = await asyncio.to_thread(_servable_recording, message.audio_path, settings.recordings_dir)
    if path is None:
        raise NotFoundException("this message's audio is missing")
    return File(path=path, filename=f"voicemail-{message.id}.wav", media_type="audio/wav",
                content_disposition_type="inline", headers={"Cache-Control": "private, no-store"})


ROUTES = [message_audio]
