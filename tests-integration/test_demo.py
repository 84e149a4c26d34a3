"""The README's demo: examples/demo_app.py served as a user runs it, checked over sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo_app.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(DEMO), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # imports on a loaded machine; not a measurement
        while True:
            try:
                httpx.get(url + "/", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"demo did not start (exit code {proc.poll()})")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_items_route(demo_url):
    r = httpx.get(demo_url + "/items/5?q=x")
    assert r.status_code == 200
    assert r.text == '{"item_id":5,"q":"x"}'


def test_chat_page(demo_url):
    r = httpx.get(demo_url + "/chat")
    assert r.status_code == 200
    assert "WebSocket" in r.text


def test_chat_room_two_clients(demo_url):
    ws_url = demo_url.replace("http://", "ws://") + "/chat/room1"
    with connect(ws_url) as alice:
        assert json.loads(alice.recv(5))["type"] == "user_joined"
        with connect(ws_url) as bob:
            assert json.loads(alice.recv(5))["user_count"] == 2
            assert json.loads(bob.recv(5))["type"] == "user_joined"
            bob.send(json.dumps({"type": "chat", "message": "héllo"}))
            for client in (alice, bob):
                msg = json.loads(client.recv(5))
                assert (msg["type"], msg["message"]) == ("chat", "héllo")
        assert json.loads(alice.recv(5))["type"] == "user_left"
