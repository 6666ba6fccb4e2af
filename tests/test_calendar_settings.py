"""Calendar settings and refresh tokens at rest: keys validated at start-up, rotation keeps old tokens readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.calendar.crypto import TokenCipher, TokenUnreadable
from app.calendar.google import load_api
from app.settings import SettingsError
from tests.conftest import make_settings


def test_bad_calendar_settings_name_the_variable(data_dir: Path) -> None:
    with pytest.raises(SettingsError, match="CALENDAR_TOKEN_KEY"):
        make_settings(data_dir, CALENDAR_TOKEN_KEY="not-a-key")
    with pytest.raises(SettingsError, match="GOOGLE_API_BASE_URL"):
        make_settings(data_dir, GOOGLE_API_BASE_URL="ftp://x")
    with pytest.raises(SettingsError, match="CALENDAR_SYNC_SECONDS"):
        make_settings(data_dir, CALENDAR_SYNC_SECONDS="1")


def test_tokens_are_encrypted_and_keys_rotate(data_dir: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = TokenCipher(make_settings(data_dir, CALENDAR_TOKEN_KEY=old))
    stored = before.encrypt("1//refresh-token")
    assert "refresh-token" not in stored
    rotated = TokenCipher(make_settings(data_dir, CALENDAR_TOKEN_KEY=f"{new},{old}"))
    assert rotated.decrypt(stored) == "1//refresh-token"
    with pytest.raises(TokenUnreadable):
        TokenCipher(make_settings(data_dir, CALENDAR_TOKEN_KEY=new)).decrypt(stored)
    # Without CALENDAR_TOKEN_KEY the key comes from SESSION_SECRETS, never the secret itself.
    derived = TokenCipher(make_settings(data_dir))
    assert derived.decrypt(derived.encrypt("t")) == "t"


def test_the_shipped_discovery_document_is_redirected_by_configuration(data_dir: Path) -> None:
    api = load_api(make_settings(data_dir, GOOGLE_API_BASE_URL="http://127.0.0.1:9999"))
    request = api.events.list(calendarId="primary", syncToken="abc")
    assert request.url.startswith("http://127.0.0.1:9999/calendar/v3/calendars/primary/events?")
    assert api.freebusy.query(json={}).url == "http://127.0.0.1:9999/calendar/v3/freeBusy"
