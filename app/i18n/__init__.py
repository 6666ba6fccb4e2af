"""Languages: what a business offers (languages), what the service says in each (lines), and dates and times
worded in the caller's or owner's language (dates)."""
