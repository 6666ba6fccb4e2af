"""Twilio webhook signatures (`X-Twilio-Signature`), checked with the twilio SDK's own validator.

Twilio signs the URL *it* requested, so the check uses the public URL (PUBLIC_BASE_URL + path + query),
never the address the request arrived on behind a proxy or tunnel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

log = logging.getLogger(__name__)


class FormParams:
    """Form fields with repeated names kept, in the shape RequestValidator reads (`getall`)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def getall(self, name: str) -> list[str]:
        return self._values[name]

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def as_dict(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._values.items()}


def public_url(public_base_url: str, path: str, query: str = "") -> str:
    url = public_base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def signature_is_valid(
    auth_token: str, url: str, params: FormParams, headers: Mapping[str, str]
) -> bool:
    signature = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not signature:
        return False
    algorithm = get_signature_algorithm(
        headers.get(SIGNATURE_SETTINGS_HEADER) or headers.get(SIGNATURE_SETTINGS_HEADER.lower())
    )
    try:
        return RequestValidator(auth_token).validate(url, params, signature, algorithm=algorithm)
    except ValueError:
        return False


def describe_refusal(url: str, headers: Mapping[str, str]) -> str:
    """A log line that says why without echoing the signature itself."""
    has_signature = bool(headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()))
    reason = "mis-signed" if has_signature else "unsigned"
    return f"refused {reason} Twilio webhook for {urlsplit(url).path}"
