"""One database migrated to head per test process, copied for each test instead of migrating again.

Running the Alembic chain costs about a second of CPU per database; the suite creates hundreds of
databases (three modes for many tests, one per server). The migrations themselves are exercised by
`tests/test_migrations.py`, which runs them for real in every mode.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

from app.db import migrate
from app.settings import load_settings

_lock = threading.Lock()
_template: Path | None = None


def _migrated_template() -> Path:
    global _template
    with _lock:
        if _template is None or not _template.exists():
            where = Path(tempfile.mkdtemp(prefix="receptionist-template-"))
            path = where / "template.db"
            migrate.upgrade(load_settings({
                "DATA_DIR": str(where),
                "DATABASE_URL": f"sqlite+aiosqlite:///{path}",
                "SESSION_SECRETS": "template-secret-0123456789abcdef",
            }))
            _template = path
        return _template


def copy_migrated(dest: Path) -> None:
    """Write a database migrated to head at `dest` (through SQLite's backup API, so WAL pages are included)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(_migrated_template())
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def local_database_file(database_url: str) -> Path | None:
    """The file behind a local SQLite/libSQL URL (`sqlite+aiosqlite:///…`, `sqlite+libsql:///…`), else None."""
    scheme, _, rest = database_url.partition(":///")
    if scheme not in ("sqlite+aiosqlite", "sqlite+libsql") or not rest or "?" in rest:
        return None
    return Path(rest).resolve()
