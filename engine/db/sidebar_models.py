"""Tables of the WeCom chat sidebar (聊天工具栏, issue 21): the script library (话术库), its images, the
record of every use and suggestion rules. Which WeCom member is which Tideflow user is workforce's
``wecom_staff`` (engine/db/workforce_models.py).

The rules about them live in ``activities/sidebar``; the migration is
``engine/migrations/versions/0010_sidebar_script_library.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class ScriptCategory(Base):
    """A folder of the library, per team (``""`` = every team), in the order staff see them."""

    __tablename__ = "script_categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team: Mapped[str] = mapped_column(String(60), default="", index=True)
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScriptImage(Base):
    """An image uploaded into the library (PNG/JPEG, at most 2 MB), stored once by content hash, with the
    WeCom media id it was last uploaded as (temporary media live 3 days)."""

    __tablename__ = "script_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    #: {"<corp>/<agent>": {"media_id": "...", "uploaded_at": "<ISO 8601>"}}
    wecom_media: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Script(Base):
    """A script (话术): the content being edited and, in ``published``, the version staff may use now.

    A change is a new ``version``. Without approval it is published at once; with approval
    (``requires_approval``) staff keep using the last approved version until a reviewer approves the
    new one (``status`` pending → approved / rejected).
    """

    __tablename__ = "scripts"
    __table_args__ = (Index("ix_scripts_team_status", "team", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("script_categories.id"), nullable=True, index=True)
    team: Mapped[str] = mapped_column(String(60), default="")
    #: text, image, link, miniprogram
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(120))
    #: the editable content: {"text": ..., "link": {...}, "miniprogram": {...}, "image_id": ...}
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    #: draft content awaiting review: pending, approved, rejected; archived scripts are hidden
    status: Mapped[str] = mapped_column(String(12), default="approved")
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: what staff use: {"version", "kind", "title", "content"}, or None before the first approval
    published: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    review_note: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(80), default="")
    reviewed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScriptUse(Base):
    """One use of a script in a chat: rendered for the customer, then sent / failed / cancelled as the
    page reports what the WeCom client said."""

    __tablename__ = "script_uses"
    __table_args__ = (Index("ix_script_uses_script_at", "script_id", "at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    script_id: Mapped[int] = mapped_column(ForeignKey("scripts.id"))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    chat_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    msgtype: Mapped[str] = mapped_column(String(20))
    #: rendered, sent, failed, cancelled
    status: Mapped[str] = mapped_column(String(12), default="rendered")
    error: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SuggestionRule(Base):
    """Puts scripts on top when the customer's latest message has a keyword and/or their situation
    matches (open ticket of a type, a tag, a loyalty tier, a running coupon campaign, an expression)."""

    __tablename__ = "suggestion_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    team: Mapped[str] = mapped_column(String(60), default="")
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    #: [{"kind": "open_ticket"|"tag"|"tier"|"campaign_running", "value": "..."}]
    situations: Mapped[list[Any]] = mapped_column(default=list)
    condition: Mapped[str] = mapped_column(Text, default="")
    script_ids: Mapped[list[Any]] = mapped_column(default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
