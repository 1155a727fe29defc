"""What a quarantined entry's error means (``engine.quarantine.error_kind``): an error kept in the stored form is
read by what it is — the exception class :func:`~engine.quarantine.reason` recorded, else the entry's kind — never
by its words; a plain-text error saved before that form is still read from its English."""

from __future__ import annotations

import pytest

from engine.expressions import CostLimitExceeded, ExpressionTooCostly
from engine.quarantine import ERROR_KINDS, error_kind, kept, reason
from engine.text import Msg, verbatim
from engine.validate import pydantic_message
from wording.stored import MAX_REASON, PREFIX


def _push_error(loc: str, message: Msg) -> Msg:
    """What the connector hook quarantines for a push mapped to an invalid event (designer/events/hooks.py)."""
    return Msg("%(field)s: %(reason)s", field=loc, reason=pydantic_message(
        {"type": "value_error", "msg": f"Value error, {message}", "ctx": {"error": ValueError(message)}}))


UNKNOWN_TYPE = Msg("unknown event type '%(type)s'; use a type from GET /api/event-types or your own under 'custom.' "
                   "(e.g. 'custom.%(type)s')", type="order.payed")

STORED = [  # (entry kind, the error as the writers make it, what it means)
    ("event", reason(RecursionError("maximum recursion depth exceeded while calling a Python object")), "too_deep"),
    ("event", reason(RecursionError()), "too_deep"),  # an exception that said nothing keeps its class too
    ("push", reason(RecursionError("maximum recursion depth exceeded")), "too_deep"),
    ("event", reason(ExpressionTooCostly(Msg("rendered text is %(count)s characters; the limit is %(limit)s",
                                             count=200_001, limit=100_000))), "too_costly"),
    ("ticket_start", reason(CostLimitExceeded("takes more than 100000 operations")), "too_costly"),
    ("push", _push_error("type", UNKNOWN_TYPE), "invalid_event"),
    ("ticket_start", reason(RuntimeError("the ticket's flow is not an active, published ticket flow")),
     "not_startable"),
    ("event", reason(LookupError("customer 42 has no identity")), "other"),
    ("event", Msg("routing is %(state)s", state="pending"), "other"),
]

LEGACY = [  # plain English saved before the stored form
    ("event", "RecursionError: maximum recursion depth exceeded", "too_deep"),
    ("event", "InputRejected: the JSON is nested deeper than the limit of 32 levels (far deeper)", "too_deep"),
    ("event", "ExpressionTooCostly: the trigger filter is too costly on this event", "too_costly"),
    ("event", "CostLimitExceeded: takes more than 100000 operations (every comparison …); simplify it", "too_costly"),
    ("event", "ValidationError: type: unknown event type 'order.payed'", "invalid_event"),
    ("push", "type: unknown event type 'order.payed'", "invalid_event"),
    ("ticket_start", "RuntimeError: the ticket's flow is not active", "not_startable"),
    ("event", "LookupError: customer 42 has no identity", "other"),
]


@pytest.mark.parametrize(("kind", "error", "meaning"), STORED)
def test_a_stored_error_means_what_caused_it(kind: str, error: Msg, meaning: str) -> None:
    text = kept(error)
    assert text.startswith(PREFIX)  # kept in the stored form, not as its English
    assert error_kind(kind, text) == meaning


@pytest.mark.parametrize(("kind", "text", "meaning"), LEGACY)
def test_a_legacy_plain_text_error_is_read_from_its_english(kind: str, text: str, meaning: str) -> None:
    assert not kept(text).startswith(PREFIX)  # plain text stays plain (verbatim), as those rows are
    assert error_kind(kind, kept(text)) == meaning


def test_every_kind_is_covered_both_ways() -> None:
    assert {m for _, _, m in STORED} == {m for _, _, m in LEGACY} == set(ERROR_KINDS)


@pytest.mark.parametrize(("kind", "error"), [
    # words the old rules looked for, in errors that are none of those things
    ("event", reason(ValueError("the sheet took 3 operations to import; simplify the header row"))),
    ("event", reason(LookupError("no customer 'recursion-tester'"))),
    ("event", reason(KeyError("too costly"))),
    ("event", reason(ValueError(verbatim("WeCom: this is not a valid event subscription, nested deeper")))),
    ("event", Msg("sending quarantine entry %(id)s again failed: %(error)s", id=1,
                  error=verbatim("a platform's words: recursion, too costly, unknown event type"))),
])
def test_an_error_is_not_classified_by_words_it_happens_to_contain(kind: str, error: Msg) -> None:
    assert error_kind(kind, kept(error)) == "other"


def test_a_push_whose_reason_mentions_recursion_is_still_an_invalid_event() -> None:
    error = _push_error("payload.note", Msg("'%(value)s' is not a valid phone number", value="recursion-1"))
    assert error_kind("push", kept(error)) == "invalid_event"


def test_a_clipped_error_keeps_what_caused_it() -> None:
    text = kept(reason(ExpressionTooCostly(verbatim("x" * 10 * MAX_REASON))))
    assert len(text) <= MAX_REASON and text.startswith(PREFIX)
    assert error_kind("event", text) == "too_costly"


def test_a_broken_stored_text_is_read_as_plain_text() -> None:
    assert error_kind("event", PREFIX + '{"t": "RecursionError: maximum recursion') == "too_deep"
    assert error_kind("event", PREFIX + '{"t": 1}') == "other"


def test_an_event_gone_before_its_redrive_is_a_reason_in_each_language(db_url: str) -> None:
    """A quarantine entry whose event row is gone: the re-drive's reason (what the entry and the 409 say) reads
    in the reader's language, the English as before."""
    from designer.i18n import translate
    from engine import events as ingest

    with pytest.raises(LookupError) as raised:
        ingest.requeue(db_url, "api:gone-1")
    said = reason(raised.value)
    assert translate(said, "en") == "LookupError: event api:gone-1 is no longer stored"
    assert translate(said, "zh-CN") == "LookupError：事件 api:gone-1 已不再保存"
