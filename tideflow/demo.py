"""Demo data for the embedded stack: the shipped flows published, demo customers, a demo admin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from activities.profile.auto_tags import install_default_rules
from engine import auth
from engine import flows as flowsvc
from engine.compiler import FlowInvalid
from engine.customers import resolve
from engine.db import models
from engine.db.session import transaction

FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"


def flow_files(directory: Path = FLOWS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if p.is_file())


def seed(database_url: str | None = None, directory: Path = FLOWS_DIR) -> dict[str, Any]:
    """Publish every shipped flow that is not there yet, add demo customers, make sure an admin exists.

    Returns what it did, including the demo admin's credentials and an API token the first time.
    """
    report: dict[str, Any] = {"published": [], "customers": 0, "admin": None, "token": None}
    with transaction(database_url) as db:
        for path in flow_files(directory):
            document = json.loads(path.read_text(encoding="utf-8"))
            if db.get(models.FlowRecord, document["id"]) is not None:
                continue
            flowsvc.save_draft(db, document, "demo")
            try:
                version = flowsvc.publish(db, document["id"], "demo")
                report["published"].append(f"{document['id']} v{version.version}")
            except FlowInvalid as exc:
                report["published"].append(f"{document['id']} (draft: {exc})")
        demo = directory / "demo" / "customers.json"
        if demo.exists() and db.scalar(select(models.Customer.id).limit(1)) is None:
            for item in json.loads(demo.read_text(encoding="utf-8"))["customers"]:
                cid = resolve(db, item["identities"], item.get("name"), item.get("attributes") or {})
                for tag in item.get("tags") or []:
                    db.merge(models.CustomerTag(customer_id=cid, tag=tag))
                report["customers"] += 1
        coupons = directory / "demo" / "coupons.json"
        if coupons.exists():
            for item in json.loads(coupons.read_text(encoding="utf-8"))["campaigns"]:
                if db.get(models.CouponCampaign, item["id"]) is None:
                    db.add(models.CouponCampaign(**item))
                    report.setdefault("campaigns", []).append(item["id"])
        install_default_rules(db)
        created = auth.ensure_demo_admin(db)
        if created is not None:
            username, password = created
            admin = auth.find_user(db, username)
            assert admin is not None
            report["admin"] = {"username": username, "password": password}
            report["token"] = auth.create_token(db, admin, "demo")
    return report
