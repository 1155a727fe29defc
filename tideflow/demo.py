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
from engine.flow_templates import FLOWS_DIR, flow_files


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
        _seed_tickets(db, directory / "demo" / "tickets.json", report)
        _seed_settlement(db, directory, report)
        if created is not None:
            username, password = created
            admin = auth.find_user(db, username)
            assert admin is not None
            report["admin"] = {"username": username, "password": password}
            report["token"] = auth.create_token(db, admin, "demo")
    return report


def _seed_tickets(db: Any, path: Path, report: dict[str, Any]) -> None:
    """Demo agent groups and ticket types for the 退款工单 / 设备报修 templates; the demo admin works
    them as an agent and supervises them (so the console and SLA escalations have someone)."""
    if not path.exists():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    admin = db.scalar(select(models.User).where(models.User.role == "admin").order_by(models.User.id).limit(1))
    for item in data["groups"]:
        if db.get(models.AgentGroup, item["key"]) is None:
            db.add(models.AgentGroup(**item, supervisor_id=admin.id if admin else None, calendar={},
                                     notify_channel="wecom", rr_last=0))
            report.setdefault("agent_groups", []).append(item["key"])
    db.flush()
    for item in data["ticket_types"]:
        if db.get(models.TicketType, item["key"]) is None:
            db.add(models.TicketType(**item))
    if admin is not None and db.get(models.Agent, admin.id) is None:
        db.add(models.Agent(user_id=admin.id, groups=["default", *[g["key"] for g in data["groups"]]],
                            working_hours={}, contact={}, **data["admin_agent"]))


def _seed_settlement(db: Any, directory: Path, report: dict[str, Any]) -> None:
    """Demo orders for the settlement templates, and two settled months of 月度门店结算 (one waiting for
    finance), so the finance dashboard (/settlement) shows something."""
    from activities.settlement.demo import seed_orders, seed_statements

    now = models.utcnow()
    report["settlement_orders"] = seed_orders(db, now)
    report["settlement_runs"] = seed_statements(db, directory / "store-monthly-settlement.json", now)
