"""What a page says, as text: the allow-list of technical words a Chinese page may show, the data a page shows
as it is (names and ids from the database and the shipped content), and the checks that find English in a Chinese
page or Chinese in an English one. Shared by tests/designer/test_i18n.py (the HTML as the server sends it) and
tests/e2e/test_browser_i18n_audit.py (the page as Chromium draws it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from designer.connectors.api import installed_kinds
from designer.i18n_check import catalogue
from designer.i18n_extract import node_schemas
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.growth_models import GrowthChannel, ReferralCampaign
from engine.db.quarantine_models import QuarantineEntry
from engine.db.session import session_factory
from engine.db.sidebar_models import Script, SuggestionRule
from engine.flow_templates import flow_templates
from wording import CAUGHT
from wording.stored import read_stored

CJK = re.compile(r"[\u4e00-\u9fff]")

#: identifiers and names of things, not sentences: allowed in a Chinese page
TECHNICAL = {"Tideflow", "SCRM", "API", "SLA", "JSON", "DMN", "FEEL", "URL", "ISO", "HTTP", "CSV", "ID", "VIP",
             "Cron", "cron", "Webhook", "webhook", "Temporal", "GMT", "UTC", "English", "openid", "unionid",
             "App", "Key", "Secret", "AppID", "AppSecret", "Token", "EncodingAESKey", "AgentId", "CorpID",
             "client_id", "client_secret", "Session", "SMTP", "STARTTLS", "SSL", "TLS", "HELO", "EHLO", "TOP",
             "Shopify", "Admin", "Bearer", "FIRST", "UNIQUE", "ANY", "PRIORITY", "RULE", "ORDER", "OUTPUT",
             "COLLECT", "Ctrl", "Shift", "Delete", "PT30M", "PT2H", "P1D", "P7D", "HMAC", "Event", "Sign"}
#: products and vendors' own words, kept as they are in the Chinese text: the DMN tools we import from, WeCom's
#: field names (what its console and API call them: a channel code's ``state``), a DMN element; and the keys and
#: names of fields that Chinese help quotes as they must be typed (a referral event's payload, the sidebar rules'
#: condition types)
TECHNICAL |= {"WeCom", "Camunda", "Drools", "Trisotech", "UserID", "WelcomeCode", "errcode", "errmsg", "import",
              "valid", "goal", "remaining", "tag", "tier", "type", "state"}
#: vendors' own English names for things, kept in the Chinese help (that is what their consoles say)
VENDOR_TERMS = ("API secret key",)
WORDS = re.compile(r"[A-Za-z][A-Za-z'’]*(?:[ \t]+[A-Za-z][A-Za-z'’]*)+")


def english_phrases(parts: list[str], data: set[str]) -> list[str]:
    """Runs of two or more plain English words (separated by spaces only) that are not technical names or
    our data: in a Chinese page, these are untranslated sentences."""
    found = []
    names = sorted(data | set(VENDOR_TERMS[:1]), key=len, reverse=True)
    for part in parts:
        for name in names:
            part = part.replace(name, " · ")
        for run in WORDS.findall(part):
            words = [w for w in run.split() if w not in TECHNICAL and re.fullmatch(r"[A-Za-z][a-z'’]*|[A-Z]+", w)]
            if len(words) >= 2 and not all(w.isupper() for w in words):
                found.append(f"{run}  ⟵  {part[:120]}")
    return found


def data_strings(db_url: str) -> set[str]:
    """Names and ids the pages show as they are (flows, users, customers): data, not page text."""
    with session_factory(db_url)() as db:
        names = {f.name for f in db.scalars(select(models.FlowRecord))}
        names |= {f.id for f in db.scalars(select(models.FlowRecord))}
        names |= {u.display_name or u.username for u in db.scalars(select(models.User))}
        names |= {g.name for g in db.scalars(select(models.AgentGroup))}
        names |= {t.name for t in db.scalars(select(models.TicketType))}
        names |= {str(f.get("label") or "") for t in db.scalars(select(models.TicketType)) for f in t.fields or []}
        names |= {str(c) for t in db.scalars(select(models.TicketType)) for f in t.fields or []
                  for c in f.get("choices") or []}
        names |= {", ".join(a.skills or []) for a in db.scalars(select(models.Agent))}  # as the agents page lists them
        names |= {str(n.get("name") or "") for v in db.scalars(select(models.FlowVersion))
                  for n in (v.document or {}).get("nodes") or [] if isinstance(n, dict)}  # node names people gave
        names |= {t.subject for t in db.scalars(select(models.Ticket))}
        names |= {c.name or "" for c in db.scalars(select(models.Customer))}
        names |= {t.tag for t in db.scalars(select(models.CustomerTag))}
        names |= {m.content for m in db.scalars(select(models.Message))}
        names |= {c.name for c in db.scalars(select(models.CouponCampaign))}
        names |= {c.name for c in db.scalars(select(GrowthChannel))}
        names |= {c.name for c in db.scalars(select(ReferralCampaign))}
        names |= {t for c in db.scalars(select(GrowthChannel)) for t in c.tags or []}
        names |= {t for c in db.scalars(select(ReferralCampaign)) for t in c.tags or []}
        names |= {s.title for s in db.scalars(select(Script))} | {str(s.content.get("text") or "")
                                                                   for s in db.scalars(select(Script))}
        for rule in db.scalars(select(SuggestionRule)):  # the library lists a rule's keywords as one text
            names |= {rule.name, ", ".join(rule.keywords)} | {str(k) for k in rule.keywords}
        names |= {t for send in db.scalars(select(wf.MassSend)) for t in (send.name, send.text)}
    names |= {t.description for t in flow_templates()} | {t.name for t in flow_templates()}  # shipped content
    names |= {str(v) for cls in installed_kinds().values() for v in (getattr(cls, "label", {}) or {}).values()}
    names |= {str(e) for _, schema in node_schemas() for e in _examples(schema)}  # example values as placeholders
    return {n for n in names if n}


def _examples(schema: Any) -> Iterator[Any]:
    if isinstance(schema, dict):
        yield from schema.get("examples", []) if isinstance(schema.get("examples"), list) else []
        for value in schema.values():
            yield from _examples(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _examples(item)


def strip(text: str, data: set[str]) -> str:
    """``text`` without our data and without English source strings that quote Chinese (a vendor console's
    menu path such as 抖店开放平台 › 控制台 is written in Chinese in every language)."""
    for name in sorted(data | {"中文"} | _CJK_SOURCES, key=len, reverse=True):
        text = text.replace(name, " ")
    return text


_CJK_SOURCES = {m.id for m in catalogue() if isinstance(m.id, str) and CJK.search(m.id)}


#: a word as a Chinese page may not show it: letters only (a token with a digit, ``_``, ``-``, ``.``, ``/``, ``@``
#: or ``:`` is an identifier, a key, a path, a time or an address: code, not words)
TOKEN = re.compile(r"[A-Za-z0-9_\-./@:*’']+")
PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*(?:[’'][a-z]+)?|[A-Z][a-z]+[A-Z][A-Za-z]*")


def identifiers(db_url: str) -> set[str]:
    """The single words of our data, shown as they are: the flows' node ids, the ports each node draws on the
    canvas (``out``, ``timeout``, a switch's case names) and the types of a settlement plan's parties, the ports
    of every node type (the palette's descriptions name them), usernames and whoever else the audit log names,
    group and ticket type keys, customers' tags, coupon campaign ids, the WeCom userids of handovers (the
    departing member and who takes over), the exception types quarantined reasons name
    (``LookupError``)."""
    from engine.flow_graph import ports_of
    from engine.registry import default_registry

    registry = default_registry()
    words: set[str] = set()
    for node_type in registry.types.values():
        words.update(ports_of(node_type, {}))

    def party_types(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "party_types" and isinstance(item, dict):
                    yield from (str(v) for v in item.values())
                elif key == "default_party_type":
                    yield str(item)
                else:
                    yield from party_types(item)
        elif isinstance(value, list):
            for item in value:
                yield from party_types(item)

    with session_factory(db_url)() as db:
        documents = [v.document for v in db.scalars(select(models.FlowVersion))]
        documents += [f.draft for f in db.scalars(select(models.FlowRecord))]
        for document in documents:
            for node in (document or {}).get("nodes") or []:
                if isinstance(node, dict):
                    words.add(str(node.get("id")))
                    words.update(ports_of(registry.get(str(node.get("type"))), node.get("config") or {}))
            edges = (document or {}).get("edges") or []
            words.update(str(e["port"]) for e in edges if isinstance(e, dict) and e.get("port"))
            words.update(party_types(document))
        words |= {u.username for u in db.scalars(select(models.User))}
        words |= {a for a in db.scalars(select(models.AuditEntry.actor)) if a != "system"}  # which is a word
        words |= {g.key for g in db.scalars(select(models.AgentGroup))}
        words |= {t.key for t in db.scalars(select(models.TicketType))}
        words |= {t.tag for t in db.scalars(select(models.CustomerTag))}
        words |= {c.id for c in db.scalars(select(models.CouponCampaign))}
        words |= {c.id for c in db.scalars(select(ReferralCampaign))}
        words |= {c.key for c in db.scalars(select(GrowthChannel))}
        words |= set(db.scalars(select(wf.Handover.handover_userid)))  # WeCom userids a handover names
        words |= {u for u in db.scalars(select(wf.HandoverItem.takeover_userid)) if u}
        for error in db.scalars(select(QuarantineEntry.error)):  # the exception's type a kept reason names
            reason = read_stored(error)
            if reason.template == CAUGHT:
                words.add(str(reason.values["error"]))
    return words


def english_words(parts: list[str], data: set[str], words: set[str]) -> list[str]:
    """Plain English words in a Chinese page — even one ("Save", "failed") — that are not technical names
    (:data:`TECHNICAL`), acronyms, our data (``data``: names, whole texts) or our identifiers (``words``)."""
    found = []
    names = sorted(data | set(VENDOR_TERMS), key=len, reverse=True)
    for part in parts:
        text = part
        for name in names:
            if name in text:
                text = text.replace(name, " · ")
        leaks = [t for t in TOKEN.findall(text) if PLAIN_WORD.fullmatch(t) and t not in TECHNICAL and t not in words
                 and not t.isupper()]
        if leaks:
            found.append(f"{' '.join(leaks)}  ⟵  {part[:120]!r}")
    return found
