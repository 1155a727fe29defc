"""The last step of the designer story on the real stack: with the statistics overlay on, an event
sent through the API moves the counts on the canvas — no reload, real Temporal, real worker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e import browser as kit
from tests.e2e.stack import E2EStack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]  # e2e: it starts the stack as subprocesses


def test_an_event_moves_the_counts_on_the_canvas(tmp_path: Path, page: Page) -> None:
    with E2EStack(tmp_path / "stack") as stack:
        stack.up(demo=True)
        creds = stack.credentials()
        kit.login(page, stack.base_url, creds["username"], creds["password"],
                  next_path="/flows/welcome-new-contact/edit")
        page.locator("#tf-stats").click()
        start = page.locator('.drawflow-node[data-tf="start"] .tf-node-stats')
        hello = page.locator('.drawflow-node[data-tf="hello"] .tf-node-stats')
        expect(start).to_contain_text("0")
        response = httpx.post(
            f"{stack.base_url}/api/events", headers={"Authorization": f"Bearer {creds['token']}"},
            json={"id": "live-stats-1", "type": "wecom.contact_added", "customer": {"wecom_external_userid": "wmLive1"},
                  "profile": {"name": "直播", "attributes": {"orders_count": 0}}}, timeout=60)
        assert response.status_code == 202 and response.json()["started"], response.text
        # the overlay refreshes every few seconds: the trigger and the welcome message count the customer
        expect(start).to_contain_text("1", timeout=30_000)
        expect(hello).to_contain_text("1", timeout=30_000)
        expect(page.locator('.drawflow-node[data-tf="wait1"] .tf-node-stats')).to_contain_text("1", timeout=30_000)
        kit.screenshot(page, "live-stats")
