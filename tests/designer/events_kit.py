"""POST /api/events from a test: an admin client of the designer app (:class:`Api`), events in the API's shape,
flows published through the API, and payloads nested too deep to start a journey with."""

from __future__ import annotations

from typing import Any

import httpx

from tests.waiting import until


class Api:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url = http, url

    async def post(self, path: str, body: Any, status: int | None = None) -> Any:
        r = await self.http.post(path, json=body)
        if status is not None:
            assert r.status_code == status, r.text
        return r.json()

    async def get(self, path: str) -> Any:
        r = await self.http.get(path)
        assert r.status_code == 200, r.text
        return r.json()

    async def messages_of(self, customer_id: str, want: int, timeout: float = 15) -> list[str]:
        """The customer's message texts, oldest first, once there are at least ``want`` of them."""
        async def enough() -> list[str]:
            found = [m["content"] for m in reversed(await self.get(f"/api/messages?customer_id={customer_id}"))]
            return found if len(found) >= want else []

        return list(await until(enough, f"{want} message(s) for customer {customer_id}", timeout, interval=0.1))


def event(event_id: str, event_type: str = "wecom.contact_added", **identities: str) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "customer": identities or {"phone": "13800138000"},
            "profile": {"name": "张三", "attributes": {"orders_count": 0}}}


async def publish(api: Api, document: dict[str, Any]) -> int:
    await api.post("/api/flows", document, 201)
    return int((await api.post(f"/api/flows/{document['id']}/publish", None, 201))["version"])


def nested(depth: int) -> dict[str, Any]:
    """{"a": {"a": … {}}}: 600 levels make the journey's start arguments too deep to encode."""
    root: dict[str, Any] = {}
    cur = root
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return root
