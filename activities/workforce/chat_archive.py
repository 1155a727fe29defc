"""The conversation archive (会话内容存档) in Tideflow: keys, the pull, storage, media, retention, viewing.

The pull (:func:`pull`) asks the Finance SDK for the records after the stored cursor, 1,000 at a time,
decrypts each with the private key of its ``publickey_ver`` (several versions are kept, encrypted at
rest with the instance key like every other secret, engine/secrets.py), and stores every message
**and** moves the cursor in one transaction: a crash before the commit re-reads the page, a crash
after it never re-reads it — each message is stored once (unique on connector + msgid as well).
A record whose key version is missing is stored encrypted (``undecryptable``) and decrypted later when
the key is added (:func:`retry_undecryptable`); nothing is skipped.

Each message is matched for sensitive words and behaviours as it is stored (compliance.py), on its
unmasked text; what is stored is masked (phones and card numbers, engine/pii.py). Media (images,
voice, video, files) are fetched with GetMediaData in chunks after the commit and kept under the data
directory; :func:`purge` applies the same retention as the message archive
(``TIDEFLOW_ARCHIVE_RETENTION_DAYS``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.workforce import compliance
from activities.workforce import staff as staff_service
from activities.workforce.common import WorkforceError, customer_for, is_external
from connectors.wecom.archive import (
    MAX_CHAT_DATA_LIMIT,
    ArchiveDecryptError,
    ChatMessage,
    EncryptedRecord,
    FinanceSdk,
    IsolatedSdk,
    Keyring,
    fetch_media,
    load_private_key,
    message_from,
    pull_page,
)
from engine import connectors as configured
from engine import secrets as vault
from engine.db import workforce_models as wf
from engine.db.retention import purge_older
from engine.db.session import session_factory, transaction
from engine.pii import mask_text
from engine.settings import get_settings
from engine.text import Msg, message_of

log = logging.getLogger(__name__)

#: body fields holding what people wrote (masked before storing)
TEXT_FIELDS = frozenset({"content", "title", "description", "desc", "wish", "address", "filename", "name", "info"})
MAX_MEDIA_BYTES = 50 * 1024 * 1024

SdkFactory = Callable[[str, Any, Any], FinanceSdk]
_factory: SdkFactory | None = None
_sdks: dict[str, FinanceSdk] = {}
_sdk_lock = threading.Lock()


def set_sdk_factory(factory: SdkFactory | None) -> None:
    """Use another Finance SDK (tests: the SDK double); None: WeCom's official SDK."""
    global _factory
    with _sdk_lock:
        _factory = factory
        for sdk in _sdks.values():
            sdk.close()
        _sdks.clear()


def _official(connector_id: str, settings: Any, secrets: Any) -> FinanceSdk:
    secret = secrets.archive_secret.get_secret_value() if getattr(secrets, "archive_secret", None) else ""
    if not secret:
        raise WorkforceError(Msg("the WeCom connector has no archive secret (会话内容存档 Secret)"),
                             Msg("an admin adds it to the WeCom connector under Connectors (its archive_secret), "
                                 "from WeCom's 管理工具 › 会话内容存档"), "archive_secret", 409)
    return IsolatedSdk(settings.corp_id, secret)


def sdk_for(database_url: str | None, connector_id: str) -> FinanceSdk:
    """One SDK instance per connector per process (the native SDK keeps a handle and a session)."""
    with _sdk_lock:
        found = _sdks.get(connector_id)
        if found is not None:
            return found
    with session_factory(database_url)() as db:
        loaded = configured.load(db, connector_id)
    if loaded is None or loaded.kind != "wecom":
        raise WorkforceError(Msg("no enabled WeCom connector '%(connector_id)s'", connector_id=connector_id),
                             Msg("configure it"), "connector_id", 404)
    sdk = (_factory or _official)(connector_id, loaded.settings, loaded.secrets)
    with _sdk_lock:
        _sdks.setdefault(connector_id, sdk)
        return _sdks[connector_id]


# -- keys ---------------------------------------------------------------------------------------------


def add_key(db: Session, connector_id: str, version: int, pem: str, actor: str, now: datetime) -> dict[str, Any]:
    """Store a private key version (validated, encrypted at rest); its fingerprint. Replacing a version is
    allowed (a corrected key)."""
    if version < 1:
        raise WorkforceError(Msg("the key version (publickey_ver) starts at 1"), Msg("use the version WeCom shows"),
                             "version")
    try:
        key = load_private_key(pem)
    except ValueError as exc:
        raise WorkforceError(message_of(exc), Msg("paste the private key that matches the public key set in WeCom"),
                             "pem") from None
    from cryptography.hazmat.primitives import serialization

    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = hashlib.sha256(der).hexdigest()[:32]
    row = db.get(wf.ArchiveKey, (connector_id, version))
    if row is None:
        row = wf.ArchiveKey(connector_id=connector_id, version=version, created_at=now)
        db.add(row)
    row.secret, row.fingerprint, row.created_by = vault.encrypt({"pem": pem}), fingerprint, actor
    return {"version": version, "fingerprint": fingerprint}


def keys(db: Session, connector_id: str) -> list[dict[str, Any]]:
    return [{"version": r.version, "fingerprint": r.fingerprint, "created_at": r.created_at.isoformat(),
             "created_by": r.created_by}
            for r in db.scalars(select(wf.ArchiveKey).where(wf.ArchiveKey.connector_id == connector_id)
                                .order_by(wf.ArchiveKey.version))]


def keyring(db: Session, connector_id: str) -> Keyring:
    ring = Keyring()
    for row in db.scalars(select(wf.ArchiveKey).where(wf.ArchiveKey.connector_id == connector_id)):
        ring.add(row.version, str(vault.decrypt(row.secret)["pem"]))
    return ring


# -- storing -----------------------------------------------------------------------------------------


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (mask_text(v) if k in TEXT_FIELDS and isinstance(v, str) else _masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _store(db: Session, connector_id: str, message: ChatMessage, now: datetime) -> wf.ArchivedMessage | None:
    if db.scalar(select(wf.ArchivedMessage.id).where(wf.ArchivedMessage.connector_id == connector_id,
                                                     wf.ArchivedMessage.msgid == message.msgid)):
        return None
    external_sender = is_external(message.sender)
    others = [u for u in message.tolist if u != message.sender]
    staff = message.sender if not external_sender else next((u for u in others if not is_external(u)), "")
    external = message.sender if external_sender else next((u for u in others if is_external(u)), "")
    direction = "customer" if external_sender else ("staff" if external or message.roomid else "internal")
    customer_id = customer_for(db, external) if external and (external_sender or not message.roomid) else None
    at = datetime.fromtimestamp(message.msgtime / 1000, UTC) if message.msgtime else now
    row = wf.ArchivedMessage(
        connector_id=connector_id, msgid=message.msgid, seq=message.seq, action=message.action,
        sender=message.sender, tolist=message.tolist[:200], roomid=message.roomid, msgtype=message.msgtype,
        direction=direction, staff_userid=staff, customer_id=customer_id, text=mask_text(message.text),
        body=_masked(message.body), msgtime=at, status="stored", encrypted={},
        media=[{"sdkfileid": f, "status": "pending"} for f in message.sdkfileids], created_at=now)
    db.add(row)
    db.flush()
    if staff:
        member = staff_service.ensure_staff(db, connector_id, staff, now)
        if direction in ("staff", "internal") and not external_sender:
            staff_service.seen_active(db, connector_id, staff, at)
        departments = [int(d) for d in member.departments or []]
    else:
        departments = []
    if message.action == "send":
        compliance.scan(db, row, message.text, departments, now)
    return row


def _store_undecryptable(db: Session, connector_id: str, record: EncryptedRecord, why: str, now: datetime) -> None:
    if db.scalar(select(wf.ArchivedMessage.id).where(wf.ArchivedMessage.connector_id == connector_id,
                                                     wf.ArchivedMessage.msgid == record.msgid)):
        return
    db.add(wf.ArchivedMessage(connector_id=connector_id, msgid=record.msgid, seq=record.seq, status="undecryptable",
                              text="", body={"error": why[:300]}, msgtime=now, created_at=now,
                              encrypted={"publickey_ver": record.publickey_ver,
                                         "encrypt_random_key": record.encrypt_random_key,
                                         "encrypt_chat_msg": record.encrypt_chat_msg}))


def pull(database_url: str | None, connector_id: str, sdk: FinanceSdk, now: datetime, *, max_pages: int = 20,
         limit: int = MAX_CHAT_DATA_LIMIT, heartbeat: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Pull from the stored cursor until WeCom has nothing more (or ``max_pages``); what was done."""
    with session_factory(database_url)() as db:
        ring = keyring(db, connector_id)
        cursor = db.get(wf.ArchiveCursor, connector_id)
        seq = cursor.seq if cursor is not None else 0
    stats = {"pages": 0, "fetched": 0, "stored": 0, "undecryptable": 0, "hits": 0, "media": 0, "seq": seq}
    for _ in range(max_pages):
        page = pull_page(sdk, ring, seq, limit)
        stats["pages"] += 1
        if not page.fetched:
            break
        with transaction(database_url) as db:
            row = db.get(wf.ArchiveCursor, connector_id, with_for_update=True)
            if row is None:
                row = wf.ArchiveCursor(connector_id=connector_id, seq=0, pulled=0)
                db.add(row)
                db.flush()
            if row.seq > seq:  # another puller moved on meanwhile: read again from there
                seq = row.seq
                continue
            before = db.scalar(select(wf.SensitiveHit.id).order_by(wf.SensitiveHit.id.desc()).limit(1)) or 0
            for message in page.messages:
                if _store(db, connector_id, message, now) is not None:
                    stats["stored"] += 1
            for record, why, _missing in page.failed:
                _store_undecryptable(db, connector_id, record, why, now)
                stats["undecryptable"] += 1
            row.seq, row.pulled, row.updated_at, row.last_error = page.last_seq, row.pulled + page.fetched, now, None
            stats["hits"] += len(db.scalars(select(wf.SensitiveHit.id).where(wf.SensitiveHit.id > before)).all())
        seq = page.last_seq
        stats["fetched"] += page.fetched
        if heartbeat is not None:
            heartbeat(seq)
        if page.fetched < limit:
            break
    stats["seq"] = seq
    stats["media"] = fetch_pending_media(database_url, connector_id, sdk)
    return stats


def media_dir(connector_id: str) -> Path:
    path = get_settings().data_dir / "archive-media" / hashlib.sha256(connector_id.encode()).hexdigest()[:16]
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_pending_media(database_url: str | None, connector_id: str, sdk: FinanceSdk, limit: int = 50) -> int:
    """Fetch media still pending (chunked GetMediaData), store each file once by its SHA-256."""
    with session_factory(database_url)() as db:
        rows = db.execute(select(wf.ArchivedMessage.id, wf.ArchivedMessage.media).where(
            wf.ArchivedMessage.connector_id == connector_id, wf.ArchivedMessage.status == "stored")
            .order_by(wf.ArchivedMessage.id.desc()).limit(2000)).all()
    todo = [(mid, media) for mid, media in rows if any(m.get("status") == "pending" for m in media or [])][:limit]
    fetched = 0
    for message_id, media in todo:
        updated = []
        for item in media:
            if item.get("status") != "pending":
                updated.append(item)
                continue
            digest = hashlib.sha256()
            chunks = []
            try:
                for chunk in fetch_media(sdk, str(item["sdkfileid"]), max_bytes=MAX_MEDIA_BYTES):
                    digest.update(chunk)
                    chunks.append(chunk)
            except Exception as exc:
                if getattr(exc, "retryable", False):
                    updated.append(item)  # try again on the next pull
                else:
                    updated.append({**item, "status": f"failed: {type(exc).__name__}"})
                continue
            name = digest.hexdigest()
            target = media_dir(connector_id) / name
            if not target.exists():
                target.write_bytes(b"".join(chunks))
            updated.append({**item, "status": "stored", "sha256": name, "size": sum(len(c) for c in chunks)})
            fetched += 1
        with transaction(database_url) as db:
            row = db.get(wf.ArchivedMessage, message_id)
            if row is not None:
                row.media = updated
    return fetched


def retry_undecryptable(database_url: str | None, connector_id: str, sdk: FinanceSdk, now: datetime) -> int:
    """Decrypt records stored encrypted because their key version was missing (after the key is added)."""
    with session_factory(database_url)() as db:
        ring = keyring(db, connector_id)
        rows = db.scalars(select(wf.ArchivedMessage).where(wf.ArchivedMessage.connector_id == connector_id,
                                                           wf.ArchivedMessage.status == "undecryptable")).all()
        records = [(r.id, EncryptedRecord(r.seq, r.msgid, int(r.encrypted.get("publickey_ver") or 0),
                                          str(r.encrypted.get("encrypt_random_key") or ""),
                                          str(r.encrypted.get("encrypt_chat_msg") or ""))) for r in rows]
    done = 0
    for row_id, record in records:
        try:
            plain = sdk.decrypt_data(ring.random_key(record), record.encrypt_chat_msg)
        except ArchiveDecryptError:
            continue
        with transaction(database_url) as db:
            row = db.get(wf.ArchivedMessage, row_id)
            if row is None or row.status != "undecryptable":
                continue
            db.delete(row)
            db.flush()
            _store(db, connector_id, message_from(record, plain), now)
            done += 1
    return done


def purge(db: Session, older_than_days: int, now: datetime) -> int:
    """Delete archived chats older than the retention (in batches); how many."""
    return purge_older(db, wf.ArchivedMessage, wf.ArchivedMessage.msgtime, older_than_days, now)


# -- viewing ------------------------------------------------------------------------------------------


def conversation(db: Session, connector_id: str, *, customer_id: str | None = None, staff: str | None = None,
                 roomid: str | None = None, limit: int = 100, before: datetime | None = None) -> list[dict[str, Any]]:
    """Archived messages of a customer, a member or a group chat, oldest first (masked as stored)."""
    if not (customer_id or staff or roomid):
        raise WorkforceError(Msg("say whose conversation to show"), Msg("send customer_id, staff or roomid"),
                             "customer_id")
    query = select(wf.ArchivedMessage).where(wf.ArchivedMessage.connector_id == connector_id,
                                             wf.ArchivedMessage.status == "stored")
    if customer_id:
        query = query.where(wf.ArchivedMessage.customer_id == customer_id)
    if staff:
        query = query.where(wf.ArchivedMessage.staff_userid == staff)
    if roomid:
        query = query.where(wf.ArchivedMessage.roomid == roomid)
    if before is not None:
        query = query.where(wf.ArchivedMessage.msgtime < before)
    rows = db.scalars(query.order_by(wf.ArchivedMessage.msgtime.desc()).limit(max(1, min(limit, 500)))).all()
    hits: dict[str, list[str]] = {}
    for msgid, word in db.execute(select(wf.SensitiveHit.msgid, wf.SensitiveHit.word).where(
            wf.SensitiveHit.connector_id == connector_id, wf.SensitiveHit.msgid.in_([r.msgid for r in rows]))):
        hits.setdefault(msgid, []).append(word)
    return [{"msgid": r.msgid, "at": r.msgtime.isoformat(), "from": r.sender, "to": list(r.tolist or []),
             "roomid": r.roomid, "direction": r.direction, "msgtype": r.msgtype, "text": r.text,
             "media": [{"status": m.get("status"), "size": m.get("size")} for m in r.media or []],
             "hits": hits.get(r.msgid, [])} for r in reversed(rows)]


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
