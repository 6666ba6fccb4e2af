"""Issue 15: the business's real calendar: Google Calendar sync, the owner's calendar pages."""
