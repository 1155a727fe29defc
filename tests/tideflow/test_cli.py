"""The ``tideflow`` command as a user types it: clear messages, exit codes, no stack traces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.flow_templates import FLOWS_DIR
from tideflow.cli import main

WELCOME = FLOWS_DIR / "welcome-new-contact.json"


@pytest.fixture(autouse=True)
def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_passwords: None) -> None:
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens: routing is deferred
    get_settings.cache_clear()


def test_validate_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "validate", str(WELCOME)]) == 0
    broken = json.loads(WELCOME.read_text())
    broken["nodes"][0]["type"] = "trigger.evnt"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert main(["flows", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "unknown node type 'trigger.evnt'" in err and "did you mean 'trigger.event'" in err


def test_unreadable_and_malformed_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "validate", str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["flows", "publish", str(bad)]) == 1
    assert "is not valid JSON" in capsys.readouterr().err


def test_publish_export_and_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "publish", str(WELCOME)]) == 0
    assert "version 1" in capsys.readouterr().out
    assert main(["flows", "publish", str(WELCOME)]) == 0  # unchanged: same version
    assert "version 1" in capsys.readouterr().out
    assert main(["flows", "export", "welcome-new-contact"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "welcome-new-contact"
    assert main(["flows", "export", "nope"]) == 1
    events = tmp_path / "events.json"
    events.write_text(json.dumps([{"id": "c1", "type": "wecom.contact_added", "customer": {"phone": "13800138000"}}]))
    assert main(["events", "send", str(events)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["status"] == "accepted" and "routed later" in out.err
    assert main(["events", "send", str(events)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "duplicate"


def test_users(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "create", "alice", "--role", "marketer", "--token"]) == 0
    out = capsys.readouterr().out
    assert "created user alice (marketer)" in out and "password:" in out and "API token: tf_" in out
    assert main(["users", "create", "bob", "--role", "wizard"]) == 1
    assert "role" in capsys.readouterr().err
    assert main(["users", "token", "alice"]) == 0
    assert capsys.readouterr().out.startswith("tf_")


def test_simulate_prints_the_timeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"at": "day 3, 07:26", "type": "order.paid"}]))
    customer = tmp_path / "customer.json"
    customer.write_text(json.dumps({"name": "赵六", "attributes": {"orders_count": 0}}))
    assert main(["simulate", str(WELCOME), "--events", str(script), "--customer", str(customer), "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert "赵六" in out and "day" in out
    # a day and a clock, not a fraction: "day 3, 07:26" (not "day 3.310")
    assert re.search(r"day 3, 07:26\s+goal\s+wait_order\s+order.paid", out), out
    assert re.search(r"day 1, 00:00\s+step\s+wait1", out) and not re.search(r"day\s+\d+\.\d", out)
    bad = tmp_path / "bad-script.json"
    bad.write_text(json.dumps([{"at": "someday", "type": "order.paid"}]))
    assert main(["simulate", str(WELCOME), "--events", str(bad)]) == 1
    assert "someday" in capsys.readouterr().err


def test_simulate_shows_an_event_after_the_end_as_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An order on day 4 after an unsubscribe on day 2 (the welcome journey exits on it): no RPCError
    'Completed workflow', the order is on the timeline at day 4, ignored."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"at": "day 2", "type": "customer.unsubscribed"},
                                  {"at": "day 4", "type": "order.paid", "payload": {"amount_fen": 9900}}]))
    assert main(["simulate", str(WELCOME), "--events", str(script), "--days", "10"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert ": exited (simulated 10 days)" in lines[0]
    ignored = [line for line in lines if " ignored " in line]
    assert len(ignored) == 1 and "day 4, 00:00" in ignored[0]
    assert "order.paid: arrived after the journey had ended" in ignored[0]
    assert lines[-1] == ignored[0]  # after the exit on day 2
    assert main(["simulate", str(WELCOME), "--events", str(script), "--days", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["what"] for s in result["timeline"]][-2:] == ["exit", "ignored"]
    assert result["timeline"][-1] == {**result["timeline"][-1], "event": "order.paid", "reason": "after_end",
                                      "node": None}
