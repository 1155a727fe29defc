"""People: one-time password links (an invitation to set one's first password, or a reset an admin made).

The link's token is stored only as its SHA-256 digest (like API tokens), expires, and works once. The user
table, API tokens and web sessions are in :mod:`engine.db.models`; the functions are :mod:`engine.auth`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class PasswordLink(Base):
    """A one-time link to set a password: ``purpose`` is ``invite`` (a new user) or ``reset``."""

    __tablename__ = "password_links"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    #: the link's id as people see it (first characters of the token), for the admin page
    prefix: Mapped[str] = mapped_column(String(12))
