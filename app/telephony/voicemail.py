"""Voicemail: the fallback's recording becomes a Message in the owner's inbox, with its audio and a transcript.

Twilio's `recordingStatusCallback` creates the Message at once (idempotent on the RecordingSid, since Twilio
retries callbacks) and enqueues a `voicemail` job; the job fetches the audio from Twilio with the account's
credentials, stores it under RECORDINGS_DIR/<business>/, and transcribes it through the OpenAI SDK. When OpenAI
(or Twilio) can't be reached the job is retried later with backoff; the message shows "transcript pending"
meanwhile, and "transcript unavailable" if every attempt failed, but its audio is kept either way.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from openai import AsyncOpenAI
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.db.models import Call, Job, Message, Session
from app.jobs import JobQueue, Permanent, complete, enqueue
from app.settings import Settings
from app.telephony.rest import TwilioCalls

log = logging.getLogger(__name__)

VOICEMAIL_JOB = "voicemail"
MAX_ATTEMPTS = 6  # with the queue's backoff (5 s doubling), about five minutes of retries
PENDING, DONE, FAILED = "pending", "done", "failed"


async def voicemail_received(db: Database, *, call_sid: str, recording_sid: str, recording_url: str,
                             duration_seconds: int) -> UUID | None:
    """Record a completed voicemail as a Message (once per recording) and enqueue its job; returns the
    message id, or None when no session has that CallSid."""
    async with db.session() as s:
        session = await s.scalar(select(Session).where(Session.twilio_call_sid == call_sid))
        if session is None:
            return None
        call_id = await s.scalar(select(Call.id).where(Call.session_id == session.id))
        existing = await s.scalar(select(Message.id).where(Message.recording_sid == recording_sid))
    if existing is not None:
        return existing
    try:
        async with db.session() as s, s.begin():
            message = Message(business_id=session.business_id, call_id=call_id, caller_phone=session.caller_phone,
                              body="", recording_sid=recording_sid, audio_seconds=duration_seconds,
                              transcript_status=PENDING)
            s.add(message)
            await s.flush()
            await enqueue(s, VOICEMAIL_JOB, {"message_id": str(message.id), "recording_url": recording_url},
                          key=f"voicemail:{recording_sid}")
            return message.id
    except IntegrityError:  # the same callback, retried at once
        async with db.session() as s:
            return await s.scalar(select(Message.id).where(Message.recording_sid == recording_sid))


class Voicemails:
    """The `voicemail` job kind (on the process's one JobQueue): fetch the audio, store it, transcribe it."""

    def __init__(self, db: Database, settings: Settings, client_factory: Callable[[], AsyncOpenAI] | None,
                 calls: TwilioCalls | None) -> None:
        self._db = db
        self._settings = settings
        self._client_factory = client_factory
        self._calls = calls

    def register(self, jobs: JobQueue) -> None:
        jobs.register(VOICEMAIL_JOB, self.run, max_attempts=MAX_ATTEMPTS)

    async def run(self, job: Job) -> None:
        try:
            message_id = UUID(str(job.payload["message_id"]))
            recording_url = str(job.payload["recording_url"])
        except (KeyError, ValueError) as exc:
            raise Permanent("voicemail job without a message") from exc
        async with self._db.session() as s:
            message = await s.get(Message, message_id)
        if message is None:
            return  # deleted meanwhile: nothing to do
        try:
            path = Path(message.audio_path) if message.audio_path else None
            if path is None or not await asyncio.to_thread(path.exists):
                path = await self._fetch(message, recording_url)
            text = await self._transcribe(path)
        except Exception:
            if job.attempts >= MAX_ATTEMPTS:
                await self._set(message_id, transcript_status=FAILED)  # the audio stays playable
            raise
        async with self._db.session() as s, s.begin():
            await s.execute(update(Message).where(Message.id == message_id)
                            .values(body=text, transcript_status=DONE))
            await complete(s, job)
    async def _set(self, message_id: UUID, **values: Any) -> None:
        async with self._db.session() as s, s.begin():
            await s.execute(update(Message).where(Message.id == message_id).values(**values))

    async def _fetch(self, message: Message, recording_url: str) -> Path:
        if self._calls is None:
            raise RuntimeError("Twilio is not configured")
        audio = await self._calls.fetch_recording(recording_url)
        folder = self._settings.recordings_dir / str(message.business_id)
        path = folder / f"voicemail-{message.id}.wav"

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(audio)

        await asyncio.to_thread(write)
        # The audio is the owner's as soon as it is stored, whatever happens to the transcript.
        await self._set(message.id, audio_path=str(path))
        return path

    async def _transcribe(self, path: Path) -> str:
        if self._client_factory is None:
            raise RuntimeError("OpenAI is not configured")
        audio = await asyncio.to_thread(path.read_bytes)
        upload = io.BytesIO(audio)
        upload.name = path.name
        result = await self._client_factory().audio.transcriptions.create(
            model=self._settings.transcription_model, file=upload)
        return result.text.strip()
