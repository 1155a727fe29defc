"""Loyalty tables (会员积分/等级): the program, accounts, points lots and the append-only ledger.
The maths live in activities/loyalty; these are the rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class LoyaltyProgram(Base):
    """The points and tier rules (activities/loyalty/program.py validates ``config``)."""

    __tablename__ = "loyalty_programs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str] = mapped_column(String(80), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyAccount(Base):
    """A member's balance and tier. Every change locks this row first, so concurrent changes queue."""

    __tablename__ = "loyalty_accounts"
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    #: points taken back (refunds) after they were spent; the next earn repays it first
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    tier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    tier_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyEntry(Base):
    """One line of the append-only points ledger. ``key`` is the idempotency key of the source
    (``order:<channel>:<shop>:<order>``, ``refund:…``, ``redeem:<request>``, ``cancel:<redeem key>``,
    ``expire:<lot>``, ``action:<journey key>``): the same source never books twice."""

    __tablename__ = "loyalty_ledger"
    __table_args__ = (Index("ix_loyalty_ledger_customer_at", "customer_id", "at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(300), unique=True)
    #: earn, burn, reverse, expire, adjust, cancel (a redemption given back: ``cancel:<redeem key>``)
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    #: what it belongs to, e.g. the order (``order:<channel>:<shop>:<order>``) a refund reverses
    source_ref: Mapped[str] = mapped_column(String(200), default="", index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyLot(Base):
    """Points earned together that expire together; burns and expiry take from ``remaining``."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (Index("ix_loyalty_lots_customer_expiry", "customer_id", "expires_at"),
                      Index("ix_loyalty_lots_expiry", "expires_at"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[int] = mapped_column(ForeignKey("loyalty_ledger.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    source_ref: Mapped[str] = mapped_column(String(200), default="")
    #: when the points_expiring notice for this lot went out
    notified_at: Mapped[datetime | None] = mapped_column(nullable=True)
