"""The DMA request journal: only inside a recording, and never a credential."""

from __future__ import annotations

import json

import pytest
import responses

from bot.dma import journal
from bot.dma.client import DmaClient

BASE = "https://dma-dallas.example.com:8443/api/rest"


def test_nothing_is_noted_outside_a_recording() -> None:
    journal.note(cluster="dallas", method="GET", path="/x", status=200, elapsed_s=0.1,
                 request=None, response="{}")
    with journal.recording() as entries:
        pass
    assert entries == []


@pytest.mark.parametrize(("body", "hidden", "kept"), [
    ({"url": "https://u:pw-Xq1@files.example.com/p.bin?sig=abc123", "name": "p"},
     ["pw-Xq1", "abc123"], ["files.example.com/p.bin", '"name": "p"']),
    ({"adminPassword": "s3cr3t-1", "apiToken": "tok-9", "servers": [{"key": "k-77"}]},
     ["s3cr3t-1", "tok-9", "k-77"], ["servers"]),
    (b"\x00binary package", ["binary"], ["(15 bytes)"]),
])
def test_bodies_are_redacted(body: object, hidden: list[str], kept: list[str]) -> None:
    text = journal.redact_body(body)
    assert text is not None
    for word in hidden:
        assert word not in text
    for word in kept:
        assert word in text


@responses.activate
def test_a_clients_requests_are_recorded_without_its_password() -> None:
    responses.get(f"{BASE}/installed-software", json={"systemVersion": "10.0.0.3",
                                                      "note": "admin:Pa55-word-7"})
    client = DmaClient(BASE, username="admin", password="Pa55-word-7", name="dallas",
                       retries=0)
    with journal.recording() as entries:
        client.installed_software()
    [entry] = entries
    assert (entry.cluster, entry.method, entry.path, entry.status) == (
        "dallas", "GET", "/installed-software", 200)
    assert "Pa55-word-7" not in json.dumps(entry.to_json())
    assert json.loads(entry.response or "")["systemVersion"] == "10.0.0.3"
