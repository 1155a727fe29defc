"""``python -m bench.load`` (``make load``): wrk from a second process on loopback against the real stack.

Targets, on SQLite and on PostgreSQL:

- ``POST /api/events`` with an API token: every request one new event (ids from a per-thread counter in
  Lua, prefixed by the run) of a type a published journey listens to, so each event is stored, resolves a
  new customer and starts a journey (signal-with-start) — ``events``; the same with 10 events per request
  — ``batch``; and one event of a type no flow listens to (stored, customer resolved, nothing started) —
  ``store``;
- ``POST /hooks/<id>`` of the ``webhook`` connector: HMAC-signed bodies. Lua has no HMAC, so the bodies are
  signed beforehand (one timestamp, within the connector's 300 s tolerance) and written into the Lua script;
  each thread walks its own slice, so every delivery is a new event until the slice runs out (then they are
  duplicates, which the run reports).

Prints requests/s, p50/p99 latency (wrk ``--latency``), non-2xx answers, and how many events were stored.
Numbers are reported, never asserted. Needs ``wrk`` (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from connectors.webhook.signing import sign_payload
from faults.scenarios import engine_for, postgres_stack, sqlite_stack
from tests.e2e.stack import E2EStack

HOOK = "load-hook"
HOOK_SECRET = "whsec-load-0123456789abcdef"  # a throwaway secret of the throwaway stack
EVENT_TYPE = "custom.load_test"
STORED_TYPE = "custom.load_stored"  # no flow listens: stored, customer resolved, routed to nothing

EVENTS_LUA = """
local counter = 0
local tid = 0
local run = "%(run)s"
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local per_request = %(per_request)d
request = function()
  local items = {}
  for j = 1, per_request do
    counter = counter + 1
    items[j] = string.format('{"id":"%%s-%%d-%%d","type":"%(type)s","source":"load",'
      .. '"customer":{"external_id":"%%s-%%d-%%d"},"profile":{"name":"客户"}}', run, tid, counter, run, tid, counter)
  end
  local body = items[1]
  if per_request > 1 then body = "[" .. table.concat(items, ",") .. "]" end
  return wrk.format(nil, "/api/events", nil, body)
end
"""

HOOKS_LUA = """
local bodies = dofile("%(bodies)s")
local sig = "%(signature_prefix)s"
local i = 0
local tid = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local n = #bodies
  local k = ((tid + i * %(threads)d) %% n) + 1
  i = i + 1
  local b = bodies[k]
  return wrk.format(nil, "/hooks/%(hook)s", {["X-Tideflow-Signature"] = b[2]}, b[1])
end
"""


@dataclass
class Result:
    database: str
    target: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str
    stored: int

    @property
    def events_per_s(self) -> float:
        """Events acknowledged per second (requests/s × events per request)."""
        return self.requests / self.seconds if self.seconds else 0.0


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> tuple[int, float, float, float, float, int, str]:
    """(requests, seconds, requests/s, p50 ms, p99 ms, non-2xx, socket errors) from ``wrk --latency`` output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    requests = int(done.group(1)) if done else 0
    seconds = _ms(done.group(2) + done.group(3)) / 1000 if done else 0.0
    rps = float(m.group(1)) if (m := re.search(r"Requests/sec:\s+([\d.]+)", output)) else 0.0
    p50 = _ms(m.group(1)) if (m := re.search(r"\s50%\s+(\S+)", output)) else float("nan")
    p99 = _ms(m.group(1)) if (m := re.search(r"\s99%\s+(\S+)", output)) else float("nan")
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)) else 0
    errors = m.group(1).strip() if (m := re.search(r"Socket errors:(.*)", output)) else ""
    return requests, seconds, rps, p50, p99, non_2xx, errors


def wrk(script: Path, url: str, threads: int, connections: int, duration: int) -> str:
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "30s",
                          "--latency", "-s", str(script), url], capture_output=True, text=True, check=False,
                         timeout=duration + 120)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def prepare(stack: E2EStack) -> None:
    document = {"schema": "tideflow/flow@1", "id": "load-test", "name": "load test", "kind": "journey",
                "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": EVENT_TYPE}},
                          {"id": "hello", "type": "action.send_message",
                           "config": {"channel": "dry-run", "template": "你好 {{ customer.name }}",
                                      "category": "transactional"}}],
                "edges": [{"from": "start", "port": "out", "to": "hello"}]}
    stack.api("POST", "/api/flows", expect=201, json=document)
    stack.api("POST", "/api/flows/load-test/publish", expect=201)
    stack.api("PUT", f"/api/connectors/{HOOK}", expect=201, json={
        "kind": "webhook", "name": "load", "settings": {}, "secrets": {"secret": HOOK_SECRET}})


def _stored(engine: Engine, source: str, prefix: str) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT COUNT(*) FROM events WHERE source = :s AND external_id LIKE :p"),
                             {"s": source, "p": f"{prefix}%"}).scalar() or 0)


def run_target(stack: E2EStack, database: str, work: Path, target: str, threads: int, connections: int,
               duration: int, hook_bodies: int, batch: int, batch_connections: int = 2) -> Result:
    run = f"r{secrets.token_hex(3)}"
    assert stack.token
    per_request = batch if target == "batch" else 1
    if target in ("events", "batch", "store"):
        script = work / f"events-{run}.lua"
        script.write_text(EVENTS_LUA % {"run": run, "token": stack.token,
                                        "type": STORED_TYPE if target == "store" else EVENT_TYPE,
                                        "per_request": per_request}, encoding="utf-8")
        source = "load"
    else:
        now = int(time.time())
        bodies = work / f"bodies-{run}.lua"
        with bodies.open("w", encoding="utf-8") as fh:
            fh.write("return {\n")
            for i in range(hook_bodies):
                body = json.dumps({"id": f"{run}-{i}", "type": EVENT_TYPE, "customer": {"external_id": f"{run}-{i}"}},
                                  separators=(",", ":"))
                fh.write(f"{{{lua_string(body)}, {lua_string(sign_payload(HOOK_SECRET, body.encode(), now))}}},\n")
            fh.write("}\n")
        script = work / f"hooks-{run}.lua"
        script.write_text(HOOKS_LUA % {"bodies": bodies, "signature_prefix": "", "threads": threads, "hook": HOOK},
                          encoding="utf-8")
        source = HOOK
    output = wrk(script, stack.base_url, threads, batch_connections if target == "batch" else connections, duration)
    requests, seconds, rps, p50, p99, non_2xx, errors = parse_wrk(output)
    engine = engine_for(stack.database_url)
    try:
        stored = _stored(engine, source, run)
    finally:
        engine.dispose()
    name = {"events": "POST /api/events (1 event, starts a journey)", "store": "POST /api/events (1 event, no flow)",
            "batch": f"POST /api/events ({batch} events, journeys)"}.get(
        target, f"POST /hooks/{HOOK} (webhook, HMAC)")
    return Result(database, name, requests * per_request, seconds, rps, p50, p99, non_2xx, errors, stored)


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per run (default 20)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--targets", default="store,events,batch,hooks",
                        help="comma-separated: store, events, batch, hooks")
    parser.add_argument("--batch", type=int, default=10, help="events per request of the batch target")
    parser.add_argument("--batch-connections", type=int, default=2,
                        help="connections of the batch target (its events in flight: this × --batch)")
    parser.add_argument("--temporal-in-memory", action="store_true",
                        help="SQLite runs: the Temporal dev server in memory instead of on its SQLite file")
    parser.add_argument("--hook-bodies", type=int, default=40000, help="pre-signed webhook bodies")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tideflow-load-"))
    try:
        results = _run_all(args, parser, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"wrk -t{args.threads} -c{args.connections} (batch: -c{args.batch_connections}) -d{args.duration}s, "
          "loopback, one web process (uvicorn), one worker, Temporal dev server")
    print("| database | target | requests/s | events/s | p50 | p99 | non-2xx | events stored / sent |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.database} | {r.target} | {r.rps:.1f} | {r.events_per_s:.1f} | {r.p50_ms:.0f} ms | "
              f"{r.p99_ms:.0f} ms | {r.non_2xx} | {r.stored} / {r.requests} |")
    return 0


def _run_all(args: argparse.Namespace, parser: argparse.ArgumentParser, work: Path) -> list[Result]:
    results: list[Result] = []
    for database in args.databases.split(","):
        stack_cm: AbstractContextManager[E2EStack]
        if database == "sqlite":
            stack_cm = sqlite_stack(work / "sqlite", persist=not args.temporal_in_memory)
        elif database == "postgres":
            stack_cm = _pg_stack(work / "pg")
        else:
            parser.error(f"unknown database {database!r}")
        with stack_cm as stack:
            prepare(stack)
            for target in args.targets.split(","):
                result = run_target(stack, database, work, target, args.threads, args.connections, args.duration,
                                    args.hook_bodies, args.batch, args.batch_connections)
                results.append(result)
                print(f"{database:9} {result.target:48} {result.rps:8.1f} req/s  "
                      f"{result.events_per_s:8.1f} events/s  p50 {result.p50_ms:7.1f} ms  "
                      f"p99 {result.p99_ms:7.1f} ms  non-2xx {result.non_2xx}  stored {result.stored}/"
                      f"{result.requests} {result.errors}", flush=True)
    return results


@contextmanager
def _pg_stack(root: Path) -> Iterator[E2EStack]:
    with postgres_stack(root) as (stack, _cluster):
        yield stack


if __name__ == "__main__":
    sys.exit(main())
