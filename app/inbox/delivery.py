"""What Twilio reports after a text was accepted: delivered, or not (and why), by its status callback."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import Customer, Notification, NotificationStatus
from app.inbox.channels import OPTED_OUT

FAILED_STATUSES = {"undelivered", "failed"}


async def record_delivery(db: Database, message_sid: str, status: str, error_code: str = "") -> bool:
    """Apply one status callback; False when no notification has that Message SID."""
    if not message_sid:
        return False
    now = datetime.now(UTC)
    async with db.session() as s, s.begin():
        n = await s.scalar(select(Notification).where(Notification.provider_id == message_sid))
        if n is None:
            return False
        if status == "delivered" and n.status == NotificationStatus.SENT.value:
            n.status = NotificationStatus.DELIVERED.value
        elif status in FAILED_STATUSES and n.status in {NotificationStatus.SENT.value,
                                                        NotificationStatus.DELIVERED.value}:
            opted_out = error_code == str(OPTED_OUT)
            n.status = NotificationStatus.SKIPPED.value if opted_out else NotificationStatus.FAILED.value
            n.last_error = ("the number replied STOP to the business's texts (Twilio 21610)" if opted_out
                            else f"the phone network did not deliver it ({status}, Twilio error {error_code or '?'})")
            if opted_out and n.customer_id:
                await s.execute(update(Customer).where(Customer.id == n.customer_id,
                                                       Customer.sms_opted_out_at.is_(None))
                                .values(sms_opted_out_at=now))
    return True
