"""Health, readiness and metrics endpoints, and ingestion while the database is down (503 + Retry-After)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.webhook.connector import WebhookConnector
from connectors.webhook.signing import sign_payload
from designer.app import create_app
from engine import auth
from engine import connectors as configured
from engine.db import models
from engine.db.session import session_factory, transaction, upgrade
from engine.settings import Settings
from faults.pg import paused
from tests.pg import PostgresCluster, missing_binaries

HOOK_SECRET = "whsec-ops-test-0123456789"


def _token(db_url: str, name: str, role: str) -> str:
    with transaction(db_url) as db:
        user = auth.create_user(db, name, "a-long-password", role)
        return auth.create_token(db, user, "t")


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch, cheap_passwords: None) -> Iterator[TestClient]:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"webhook": WebhookConnector})
    with TestClient(create_app(db_url, connect=False)) as c:
        yield c


def scrape(client: TestClient, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_is_public_and_readyz_names_what_is_missing(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")  # no Temporal connection in this app
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "failed": ["temporal"]}


async def test_readyz_is_ready_with_database_and_temporal(db_url: str, dev_env: Any) -> None:
    import httpx

    app = create_app(db_url, client=dev_env.client)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tideflow.test") as http:
        r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready"}


def test_metrics_need_the_metrics_token_or_an_admin(client: TestClient, db_url: str) -> None:
    marketer = _token(db_url, "mia", "marketer")
    admin = _token(db_url, "root", "admin")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {marketer}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer not-the-metrics-token"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    client.app.state.settings = Settings(metrics_token=SecretStr("scrape-secret-123"))  # type: ignore[attr-defined]
    assert scrape(client, "scrape-secret-123")


def test_metrics_count_events_requests_hooks_and_messages(client: TestClient, db_url: str) -> None:
    admin = _token(db_url, "root", "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    before = scrape(client, admin)
    event = {"id": "m-1", "type": "order.paid", "customer": {"external_id": "c-1"}}
    assert client.post("/api/events", json=event, headers=headers).status_code == 202
    assert client.post("/api/events", json=event, headers=headers).status_code == 202  # duplicate
    assert client.post("/api/events", json={"id": "m-2", "type": "no.such"}, headers=headers).status_code == 422
    r = client.put("/api/connectors/shop-hook", headers=headers, json={
        "kind": "webhook", "name": "shop", "settings": {}, "secrets": {"secret": HOOK_SECRET}})
    assert r.status_code == 201, r.text
    body = json.dumps({"id": "h-1", "type": "order.paid", "customer": {"external_id": "c-2"}}).encode()
    signed = {"Content-Type": "application/json", "X-Tideflow-Signature": sign_payload(HOOK_SECRET, body,
                                                                                       int(time.time()))}
    assert client.post("/hooks/shop-hook", content=body, headers=signed).status_code == 200
    assert client.post("/hooks/shop-hook", content=body, headers={
        "Content-Type": "application/json", "X-Tideflow-Signature": "t=1,v1=00"}).status_code == 401
    assert client.post("/hooks/nope-1", content=body, headers=signed).status_code == 404
    with transaction(db_url) as db:
        customer = db.scalar(select(models.Customer.id).limit(1))
        db.add(models.Message(idempotency_key="k-1", customer_id=customer, flow_id="f", node_id="n",
                              channel="sms", content="x", status="sent"))
    after = scrape(client, admin)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tideflow_events_total", outcome="accepted") == 2  # one by API, one by hook
    assert delta("tideflow_events_total", outcome="duplicate") == 1
    assert delta("tideflow_events_total", outcome="rejected") == 2  # the 422 and the bad signature
    assert delta("tideflow_event_ingest_seconds_count") == 3
    assert delta("tideflow_http_requests_total", route="/api/events", method="POST", status="202") == 2
    assert delta("tideflow_http_requests_total", route="/api/events", method="POST", status="422") == 1
    assert delta("tideflow_hook_deliveries_total", connector="shop-hook", status="200") == 1
    assert delta("tideflow_hook_deliveries_total", connector="shop-hook", status="401") == 1
    assert delta("tideflow_hook_deliveries_total", connector="unknown", status="404") == 1
    assert value(after, "tideflow_messages", channel="sms", status="sent") == 1
    assert value(after, "tideflow_events_unrouted") == 2  # no Temporal here: stored, waiting for the re-router
    assert not any(name == "tideflow_http_requests_total" and "m-1" in str(labels) for name, labels in after)


@pytest.fixture
def own_pg() -> Iterator[PostgresCluster]:
    if missing_binaries():
        pytest.fail("needs the PostgreSQL 15 server binaries (apt-get install postgresql-15)", pytrace=False)
    with PostgresCluster() as cluster:
        yield cluster


@pytest.mark.postgres
def test_ingestion_answers_503_with_retry_after_while_postgres_is_down(
        own_pg: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    url = own_pg.create_database("ops_down")
    upgrade(url)
    token = _token(url, "sender", "developer")
    headers = {"Authorization": f"Bearer {token}"}
    batch = [{"id": f"down-{i}", "type": "order.paid", "customer": {"external_id": f"down-c{i}"}} for i in range(5)]
    with TestClient(create_app(url, connect=False)) as client:
        assert client.post("/api/events", json=batch[:1], headers=headers).status_code == 202
        with paused(own_pg):
            r = client.post("/api/events", json=batch, headers=headers)
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) > 0
            assert "nothing was stored" in r.json()["detail"]["message"]
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "database" in ready.json()["failed"]
        r = client.post("/api/events", json=batch, headers=headers)  # the caller retries the whole batch
        assert r.status_code == 202, r.text
        assert [e["status"] for e in r.json()] == ["duplicate"] + ["accepted"] * 4
    with session_factory(url)() as db:
        assert db.scalar(select(func.count()).select_from(models.EventRecord)) == 5
        assert db.scalar(select(func.count()).select_from(models.Customer)) == 5
