"""Migration 0018 on an existing SQLite database: ``mass_sends`` is rebuilt with AUTOINCREMENT, its rows, ids and
indexes and the rows referring to them (recipients, tasks, flow requests) kept, so a deleted (withdrawn) send's
id is never handed to a later send — its workflow id ``mass-send/<id>`` would be taken for the withdrawn one's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[2] / "engine" / "migrations"
NOW = "2026-12-01 08:00:00.000000"


def migrate(url: str, revision: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    (command.downgrade if down else command.upgrade)(cfg, revision)


def add_send(db: sqlite3.Connection, status: str = "sending") -> int:
    cursor = db.execute(
        "INSERT INTO mass_sends (connector_id, chat_type, name, text, attachments, audience, quota_policy, at_limit,"
        " status, counts, created_by, created_at, updated_at) VALUES ('wecom-main', 'single', '', 'hi', '[]', '{}',"
        " 'day_1', 'exclude', ?, '{}', 'marketer', ?, ?)", (status, NOW, NOW))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def test_the_rebuilt_table_keeps_its_rows_and_never_hands_out_an_id_twice(tmp_path: Path) -> None:
    file = tmp_path / "tideflow.db"
    url = f"sqlite:///{file}"
    migrate(url, "0017_web_heartbeat")
    with sqlite3.connect(file) as db:
        db.execute("PRAGMA foreign_keys=ON")
        first, second = add_send(db, "done"), add_send(db)
        db.execute("INSERT INTO mass_send_recipients (mass_send_id, recipient, connector_id, sender, status)"
                   " VALUES (?, 'wmA', 'wecom-main', 'zhangsan', 'sent')", (first,))
        db.execute("INSERT INTO mass_send_tasks (mass_send_id, sender, batch, status, recipients, created_at)"
                   " VALUES (?, 'zhangsan', 1, 'sent', 1, ?)", (first, NOW))

    migrate(url, "heads")
    with sqlite3.connect(file) as db:
        db.execute("PRAGMA foreign_keys=ON")
        assert "AUTOINCREMENT" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'mass_sends'").fetchone()[0]
        assert db.execute("SELECT id, status FROM mass_sends ORDER BY id").fetchall() == [(first, "done"),
                                                                                         (second, "sending")]
        assert db.execute("SELECT mass_send_id, recipient FROM mass_send_recipients").fetchall() == [(first, "wmA")]
        assert db.execute("SELECT mass_send_id FROM mass_send_tasks").fetchall() == [(first,)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name ="
                                               " 'mass_sends'")} == {"ix_mass_sends_connector_id",
                                                                     "ix_mass_sends_status"}
        db.execute("DELETE FROM mass_sends WHERE id = ?", (second,))  # the newest send, withdrawn
        assert add_send(db) == second + 1  # its id is not handed out again

    migrate(url, "0017_web_heartbeat", down=True)  # and back: the rows stay
    with sqlite3.connect(file) as db:
        assert "AUTOINCREMENT" not in db.execute("SELECT sql FROM sqlite_master WHERE name = 'mass_sends'"
                                                 ).fetchone()[0]
        assert [i for (i,) in db.execute("SELECT id FROM mass_sends ORDER BY id")] == [first, second + 1]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
