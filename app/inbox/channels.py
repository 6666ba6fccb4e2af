"""The two ways a notification leaves: email through SMTP (aiosmtplib) and SMS through Twilio's Messages API
(the twilio SDK's async client, with `TWILIO_API_BASE_URL` applied as for calls).

Each send either returns the provider's id or raises one of three errors, which decide what the job does:
`Retry` (the server is down, busy or said "try later": back off and try again), `Refused` (it will never be
accepted: fail now) and `OptedOut` (Twilio 21610: the number replied STOP; never text it again).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import aiohttp
import aiosmtplib
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from app.settings import Settings
from app.telephony.rest import OriginRewritingHttpClient

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 20.0
SMS_MAX_CHARS = 1600  # Twilio's limit for a message body
OPTED_OUT = 21610
MESSAGE_STATUS_PATH = "/twilio/messages/status"


class SendError(Exception):
    pass


class Retry(SendError):
    """Worth trying again later."""


class Refused(SendError):
    """Will never be accepted as it is."""


class OptedOut(Refused):
    """The recipient replied STOP to this sender."""


class EmailChannel:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def configured(self) -> bool:
        return self._settings.smtp_configured

    async def send(self, *, to: str, subject: str, body: str, message_id: str) -> str:
        if not self.configured or not self._settings.smtp_url:
            raise Refused("email is not set up on this server (SMTP_URL and SMTP_FROM)")
        url = urlsplit(self._settings.smtp_url)
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        # One fixed Message-ID per notification: were a send ever repeated, mail systems fold the copies.
        message["Message-ID"] = message_id
        message.set_content(body)
        secure = url.scheme == "smtps"
        try:
            await aiosmtplib.send(
                message,
                hostname=url.hostname,
                port=url.port or (465 if secure else 587),
                username=unquote(url.username) if url.username else None,
                password=unquote(url.password) if url.password else None,
                use_tls=secure,
                start_tls=None if not secure else False,  # None: upgrade when the server offers STARTTLS
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(400 <= c < 500 for c in codes):
                raise Retry(f"the mail server deferred the address ({codes[0]})") from exc
            raise Refused(f"the mail server refused the address ({codes[0] if codes else '?'})") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise Retry(f"the mail server said to try later ({exc.code})") from exc
            if exc.code == 535:
                raise Refused("the mail server refused the SMTP_URL login (535)") from exc
            raise Refused(f"the mail server refused the email ({exc.code})") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise Retry(f"could not reach the mail server ({type(exc).__name__})") from exc
        return message_id


class SmsChannel:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None

    @property
    def configured(self) -> bool:
        return self._settings.twilio_configured

    def _messages(self) -> Client:
        if self._client is None:
            self._client = Client(
                self._settings.twilio_account_sid, self._settings.twilio_auth_token,
                http_client=OriginRewritingHttpClient(self._settings.twilio_api_base_url),
            )
        return self._client

    async def send(self, *, to: str, from_: str | None, body: str) -> str:
        if not self.configured:
            raise Refused("texting is not set up on this server (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)")
        if not from_:
            raise Refused("the business has no phone number to text from (Settings → phone number)")
        try:
            message = await self._messages().messages.create_async(
                to=to, from_=from_, body=body[:SMS_MAX_CHARS],
                status_callback=self._settings.public_base_url + MESSAGE_STATUS_PATH,
            )
        except TwilioRestException as exc:
            if exc.code == OPTED_OUT:
                raise OptedOut("the number replied STOP to the business's texts (Twilio 21610)") from exc
            if exc.status >= 500 or exc.status == 429:
                raise Retry(f"Twilio is unavailable ({exc.status})") from exc
            raise Refused(f"Twilio refused the text ({exc.status}, code {exc.code}): {exc.msg}") from exc
        except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Retry(f"could not reach Twilio ({type(exc).__name__})") from exc
        return str(message.sid)
