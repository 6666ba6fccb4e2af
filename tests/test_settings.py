"""Configuration is validated at start-up; a wrong value names the variable, with no stack trace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import SettingsError, load_settings
from tests.support.server import ROOT, base_env


def test_defaults_are_the_embedded_database_and_local_secrets(data_dir: Path) -> None:
    settings = load_settings({"DATA_DIR": str(data_dir)})
    assert settings.database_url == f"sqlite+aiosqlite:///{data_dir / 'receptionist.db'}"
    assert settings.realtime_model == "gpt-realtime-2.1" and settings.supervisor_model == "gpt-4.1"
    assert settings.voice_engine_default == "realtime" and settings.live_model == "gpt-live-1.1"
    assert settings.summary_model == "gpt-4.1-mini"
    assert settings.public_base_url == "http://localhost:8000" and not settings.secure_cookies
    assert settings.recordings_dir == data_dir / "recordings"
    # The generated session key is kept, so a restart doesn't sign everybody out.
    assert load_settings({"DATA_DIR": str(data_dir)}).session_secrets == settings.session_secrets
    assert len(settings.session_secrets[0]) >= 32


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DATABASE_URL": "postgresql://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "libsql://db.turso.io"}, "TURSO_AUTH_TOKEN"),
        ({"PUBLIC_BASE_URL": "example.com"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "https://example.com/app"}, "PUBLIC_BASE_URL"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "XX123", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_ACCOUNT_SID"),
        ({"GOOGLE_CLIENT_ID": "abc"}, "GOOGLE_CLIENT_SECRET"),
        ({"SESSION_SECRETS": "short"}, "SESSION_SECRETS"),
        ({"PRICE_OVERRIDES": "{not json"}, "PRICE_OVERRIDES"),
        ({"SUPERVISOR_TIMEOUT_SECONDS": "0"}, "SUPERVISOR_TIMEOUT_SECONDS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.internal"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.0/33"}, "FORWARDED_ALLOW_IPS"),
    ],
)
def test_wrong_values_name_the_variable(data_dir: Path, env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        load_settings({"DATA_DIR": str(data_dir), **env})


def test_secret_rotation_list_and_price_overrides(data_dir: Path) -> None:
    settings = load_settings({
        "DATA_DIR": str(data_dir),
        "SESSION_SECRETS": "new-key-0123456789abcdef, old-key-0123456789abcdef",
        "PRICE_OVERRIDES": '{"gpt-realtime": {"audio_input": 30}}',
        "PUBLIC_BASE_URL": "https://rcpt.example.com/",
    })
    assert settings.session_secrets == ("new-key-0123456789abcdef", "old-key-0123456789abcdef")
    assert settings.price_overrides == {"gpt-realtime": {"audio_input": 30.0}}
    assert settings.secure_cookies and settings.public_base_url == "https://rcpt.example.com"
    assert settings.public_ws_base_url == "wss://rcpt.example.com"


def test_forwarded_allow_ips(data_dir: Path) -> None:
    default = load_settings({"DATA_DIR": str(data_dir)})
    assert default.forwarded_allow_ips == () and not default.forwarded_allow_any
    listed = load_settings({"DATA_DIR": str(data_dir), "FORWARDED_ALLOW_IPS": " 127.0.0.1, 10.1.2.3/8,2001:db8::/32 "})
    assert listed.forwarded_allow_ips == ("127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32")
    assert not listed.forwarded_allow_any
    star = load_settings({"DATA_DIR": str(data_dir), "FORWARDED_ALLOW_IPS": "*"})
    assert star.forwarded_allow_any and star.forwarded_allow_ips == ()
    both = load_settings({"DATA_DIR": str(data_dir), "FORWARDED_ALLOW_IPS": "*, 10.0.0.0/8"})
    assert both.forwarded_allow_any and both.forwarded_allow_ips == ("10.0.0.0/8",)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PUBLIC_BASE_URL", "not-a-url", "PUBLIC_BASE_URL must be an absolute http/https URL"),
        ("FORWARDED_ALLOW_IPS", "127.0.0.1,localhost", "FORWARDED_ALLOW_IPS must be comma-separated IP addresses"),
    ],
)
def test_server_start_with_a_bad_value_prints_one_clear_line(
    data_dir: Path, name: str, value: str, message: str
) -> None:
    env = base_env(data_dir, **{name: value})
    proc = subprocess.run(
        [sys.executable, "-c", "import app.main"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert f"configuration error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
