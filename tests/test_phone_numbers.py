"""Phone numbers through `phonenumbers`: typed numbers are read in the business's region (its number's country,
else its timezone's), stored in E.164 and shown nationally; caller-ID matches what was typed; withheld callers
identify nobody; transfers go only to ordinary lines in the business's country unless the operator allows more."""

from __future__ import annotations

from uuid import uuid4

import pytest

from app.db.engine import Database
from app.db.models import Business
from app.db.phone import (
    PhoneError,
    business_region,
    national_format,
    normalize_phone,
    timezone_region,
    transfer_error,
    vouched_number,
)
from app.db.services import BusinessScope
from app.settings import SettingsError, load_settings
from app.telephony.fallback import fallback_twiml
from app.telephony.records import phone_or_none
from app.telephony.transfers import usable_transfer_number
from app.tools import ToolContext, run_tool
from app.voice.sessions import caller_context
from tests.support.data import create_owner


@pytest.mark.parametrize(("typed", "region", "stored"), [
    ("020 7946 0958", "GB", "+442079460958"),
    ("07700 900123", "GB", "+447700900123"),
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("030 1234567", "DE", "+49301234567"),
    ("(555) 123-4567", "US", "+15551234567"),
    ("555-123-4567", "US", "+15551234567"),
    ("1 555 123 4567", "US", "+15551234567"),
    ("+1 555 123 4567", "GB", "+15551234567"),
    ("0044 20 7946 0958", "US", "+442079460958"),
])
def test_typed_numbers_are_read_in_the_region_and_stored_e164(typed: str, region: str, stored: str) -> None:
    assert normalize_phone(typed, region) == stored


@pytest.mark.parametrize("bad", ["", "12", "call me", "020 7946", "+44"])
def test_not_a_number_is_a_clear_error(bad: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(bad, "GB")


def test_a_local_only_us_number_needs_its_area_code() -> None:
    with pytest.raises(PhoneError, match="area code"):
        normalize_phone("123-4567", "US")


def test_the_business_region_comes_from_its_number_else_its_timezone() -> None:
    assert timezone_region("Europe/London") == "GB" and timezone_region("Europe/Paris") == "FR"
    assert timezone_region("America/Toronto") == "CA" and timezone_region("UTC") is None
    assert business_region(None, "Europe/London") == "GB"
    assert business_region("+15550001000", "Europe/London") == "US"  # its number's country wins
    assert business_region(None, "UTC") == "US"
    assert national_format("+442079460958", "GB") == "020 7946 0958"
    assert national_format("+15551234567", "US") == "(555) 123-4567"
    assert national_format("+33612345678", "GB") == "+33 6 12 34 56 78"  # foreign: international


@pytest.mark.parametrize("raw", ["anonymous", "Anonymous", "", None, "+266696687", "+7378742833", "+86282452253",
                                 "+8656696", "+2562533", "sip:alice@example.com", "client:bob", "266696687", "+1"])
def test_withheld_sip_and_client_callers_identify_nobody(raw: str | None) -> None:
    assert vouched_number(raw) is None and phone_or_none(raw) is None


def test_a_real_caller_id_is_vouched_for() -> None:
    assert vouched_number("+15553334444") == "+15553334444"
    assert vouched_number("+442079460958") == "+442079460958"


@pytest.mark.parametrize(("number", "home", "problem"), [
    ("+19005551234", "US", "premium-rate"),
    ("+449061234567", "GB", "premium-rate"),
    ("+448712345678", "GB", "premium-rate"),
    ("+44118118", "GB", "Short codes"),
    ("+15550001999", "US", "numbering plan"),
    ("+442079460958", "US", "this number is in United Kingdom"),
    ("+18765551234", "US", "this number is in Jamaica"),  # +1, but another country: a classic toll-fraud target
    ("+12125550199", "US", None),
    ("+18005550199", "US", None),
    ("+442079460958", "GB", None),
])
def test_transfer_numbers(number: str, home: str, problem: str | None) -> None:
    error = transfer_error(number, home)
    assert (error is None) if problem is None else (error is not None and problem in error), error


def test_the_operator_can_allow_more_transfer_countries() -> None:
    assert transfer_error("+14165550123", "US") is not None
    assert transfer_error("+14165550123", "US", allowed_regions=["CA"]) is None
    assert transfer_error("+442079460958", "US", allow_international=True) is None
    assert "premium-rate" in (transfer_error("+449061234567", "US", allow_international=True) or "")
    settings = load_settings({"TRANSFER_ALLOW_COUNTRIES": "ca, gb", "TRANSFER_ALLOW_INTERNATIONAL": "no"})
    assert settings.transfer_allow_countries == ("CA", "GB") and not settings.transfer_allow_international
    with pytest.raises(SettingsError, match="TRANSFER_ALLOW_COUNTRIES"):
        load_settings({"TRANSFER_ALLOW_COUNTRIES": "Canada"})


def test_a_saved_transfer_number_the_rules_now_refuse_dials_out_by_no_path() -> None:
    """A number saved before the rules (or before the operator narrowed TRANSFER_ALLOW_*) is not dialled by the
    receptionist's transfer nor by the fallback forward: the fallback records a voicemail instead."""
    business = Business(id=uuid4(), name="Sam's", timezone="America/New_York", phone_number="+12125550100",
                        transfer_number="+442079460958")
    settings = load_settings({})
    assert usable_transfer_number(business, settings) is None
    document = fallback_twiml(business, "ai_unavailable", base_url="https://x.example",
                              forward_to=usable_transfer_number(business, settings))
    assert "<Record" in document and "<Dial" not in document and "+442079460958" not in document
    wider = load_settings({"TRANSFER_ALLOW_COUNTRIES": "GB"})
    assert usable_transfer_number(business, wider) == "+442079460958"
    document = fallback_twiml(business, "ai_unavailable", base_url="https://x.example",
                              forward_to=usable_transfer_number(business, wider))
    assert "<Dial" in document and "+442079460958" in document


@pytest.mark.parametrize(("timezone", "number", "typed", "from_line"), [
    ("Europe/London", "+442079460000", "020 7946 0958", "+442079460958"),
    ("Europe/London", None, "020 7946 0958", "+442079460958"),
    ("America/New_York", "+15550001000", "555-123-4567", "+15551234567"),
])
async def test_caller_id_matches_the_customer_a_typed_number_created(
    db: Database, timezone: str, number: str | None, typed: str, from_line: str
) -> None:
    _user, business = await create_owner(db, timezone=timezone, phone_number=number)
    scope = BusinessScope(db.session_maker, business.id)
    withheld = ToolContext(scope=scope, business=business)
    saved = await run_tool(withheld, "save_customer", {"phone": typed, "name": "Pat"})
    assert saved["saved"] is True
    assert (await scope.customer_by_phone(typed)) is not None  # the owner's typed form finds them too
    customer = await scope.customer_by_phone(from_line)
    assert customer is not None and customer.phone == from_line
    on_the_line = ToolContext(scope=BusinessScope(db.session_maker, business.id), business=business,
                              caller_phone=from_line)
    assert (await run_tool(on_the_line, "find_customer", {}))["name"] == "Pat"
    assert (await caller_context(db, business, from_line)).name == "Pat"
