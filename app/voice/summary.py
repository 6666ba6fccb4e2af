"""Call summaries, produced after the call by jobs kept in the database.

A `summary` job of `app.jobs`: claimed by one worker at a time, retried with backoff, picked up again after a
restart. The summary, its cost and the job's completion commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from openai import AsyncOpenAI
from sqlalchemy import select

from app.billing.pricing import cost_usd, from_responses
from app.db.engine import Database
from app.db.models import Business, Call, Job
from app.i18n import languages
from app.jobs import JobQueue, Permanent, complete
from app.settings import Settings
from app.voice.recorder import SUMMARY_JOB

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5

SUMMARY_INSTRUCTIONS = (
    "Summarise this phone call to a small business for its owner in one or two sentences: who called, what "
    "they wanted, and what was done (bookings with day and time, messages taken, anything left open). "
    "Plain text, no preamble."
)


def owner_language_note(stored: list[str] | None, call_language: str | None) -> str:
    """Issue 16: the owner reads the summary in the business's primary language, whatever the call was in (the
    transcript stays as spoken)."""
    owner = languages.for_owner(stored)
    note = f" Write it in {owner.language_name('en')}"
    spoken = languages.get(call_language) if call_language else None
    if spoken is not None and spoken.base != owner.base:
        note += f"; the call was in {spoken.language_name('en')}, so translate what was said"
    return note + "."


class Summaries:
    """The `summary` job kind: one summary per finished call, its cost added to the call's."""

    def __init__(self, db: Database, settings: Settings,
                 client_factory: Callable[[], AsyncOpenAI] | None = None) -> None:
        self._db = db
        self._settings = settings
        self._client_factory = client_factory

    def register(self, jobs: JobQueue) -> None:
        jobs.register(SUMMARY_JOB, self.run, max_attempts=MAX_ATTEMPTS)

    async def run(self, job: Job) -> None:
        try:
            call_id = UUID(str(job.payload["call_id"]))
        except (KeyError, ValueError) as exc:
            raise Permanent("summary job without a call id") from exc
        await self._summarise(call_id, job)

    async def _summarise(self, call_id: UUID, job: Job) -> None:
        async with self._db.session() as s:
            call = await s.get(Call, call_id)
        if call is None:
            return  # the call was deleted: nothing to summarise
        if not call.transcript.strip():
            summary = "No conversation took place" + (f" ({call.end_reason})." if call.end_reason else ".")
            usage_delta = None
        else:
            if self._client_factory is None:
                raise RuntimeError("OpenAI is not configured")
            client = self._client_factory()
            async with self._db.session() as s:
                stored = await s.scalar(select(Business.languages).where(Business.id == call.business_id))
            response = await client.responses.create(
                model=self._settings.summary_model,
                instructions=SUMMARY_INSTRUCTIONS + owner_language_note(stored, call.language),
                input=[{"role": "user", "content": f"Please write a summary of this call.\n\n{call.transcript}"}],
                store=False,
            )
            summary = response.output_text.strip()
            if not summary:
                raise RuntimeError("the summary model returned no text")
            usage_delta = from_responses(response.usage.model_dump()) if response.usage else None
        # The summary, its cost and the job's completion commit together, so a crash in between can't
        # count the summary's usage twice when the job runs again. In the writer queue: it runs as calls end,
        # while others start (app/db/writer.py).
        async with self._db.write() as s:
            await complete(s, job)
            call = await s.get(Call, call_id)
            if call is None:
                return
            call.summary = summary
            if usage_delta is not None:
                cost = cost_usd(self._settings.summary_model, usage_delta, self._settings.price_overrides)
                usage = dict(call.usage or {})
                usage["summary"] = {"model": self._settings.summary_model, **usage_delta.as_dict(), "cost_usd": cost}
                call.usage = usage
                call.input_tokens += usage_delta.input_tokens
                call.output_tokens += usage_delta.output_tokens
                if cost is None:
                    call.price_unknown = True  # the priced part stays; pages say "price unknown"
                else:
                    call.cost_usd = round(call.cost_usd + cost, 6)
