"""The seeded template (tests/dbtemplate.py): a copy is the database that the same calls and then
``tideflow.demo.seed`` would have written, with the report that seed answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import auth
from engine.db import models
from engine.db.session import transaction
from tests.dbtemplate import migrated_sqlite, seeded_sqlite
from tests.designer.pages_kit import add_users
from tideflow.demo import seed

TABLES = (models.FlowRecord, models.FlowVersion, models.Customer, models.CustomerTag, models.User,
          models.CouponCampaign, models.AgentGroup, models.TicketType, models.Agent)


def counts(url: str) -> dict[str, int]:
    with transaction(url) as db:
        return {table.__name__: db.scalar(select(func.count()).select_from(table)) or 0 for table in TABLES}


def test_a_copy_holds_what_add_users_then_seed_writes(tmp_path: Path, cheap_passwords: None) -> None:
    real = migrated_sqlite(f"sqlite:///{tmp_path / 'real.db'}")
    add_users(real)
    real_report = seed(real)
    copy = migrated_sqlite(f"sqlite:///{tmp_path / 'copy.db'}")
    report = seeded_sqlite(copy, add_users)
    assert counts(copy) == counts(real) and counts(copy)["FlowVersion"] > 0
    assert report["published"] == real_report["published"] and report["admin"] is None  # the users came first
    assert seed(copy)["published"] == []  # seed finds it seeded: nothing published twice
    with transaction(copy) as db:
        admin = auth.find_user(db, "admin")
        assert admin is not None and admin.display_name == "admin user"  # add_users' admin, not the demo one


def test_the_report_s_demo_admin_and_token_work_in_every_copy(tmp_path: Path, cheap_passwords: None) -> None:
    reports: list[dict[str, Any]] = []
    for name in ("one", "two"):
        url = migrated_sqlite(f"sqlite:///{tmp_path / name}.db")
        reports.append(report := seeded_sqlite(url))
        with transaction(url) as db:
            admin = auth.find_user(db, report["admin"]["username"])
            assert admin is not None and auth.verify_password(admin.password_hash, report["admin"]["password"])
            assert auth.authenticate_token(db, report["token"]) is not None
    assert reports[0] == reports[1]
    reports[0]["published"].clear()
    assert seeded_sqlite(migrated_sqlite(f"sqlite:///{tmp_path / 'three.db'}"))["published"]  # a copy each time


def test_a_database_written_to_since_it_was_migrated_is_refused(tmp_path: Path, cheap_passwords: None) -> None:
    url = migrated_sqlite(f"sqlite:///{tmp_path / 'used.db'}")
    add_users(url)
    with pytest.raises(ValueError, match="written to after migrated_sqlite made it: call seed on it instead"):
        seeded_sqlite(url, add_users)
    assert counts(url)["User"] == 6 and counts(url)["FlowRecord"] == 0  # left as it was
