"""Graceful shutdown of the ``cymongoose-asgi`` CLI (``python -m cymongoose.asgi``) while
clients hold long-lived connections: an endless SSE stream and chat-room WebSockets.
On SIGTERM the process must exit with status 0 within the graceful timeout plus a margin,
and every client must see its connection end instead of hanging."""

from __future__ import annotations

import json
import signal

import httpx
import pytest
from apps.asgi_support import cli_server
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(120)

GRACE = ("--timeout-graceful-shutdown", "1")


def test_sigterm_with_an_endless_sse_stream():
    with cli_server("examples.asgi.sse:app", *GRACE) as (url, proc):
        with httpx.Client(timeout=30) as client:
            with client.stream("GET", url + "/sse", params={"interval": "0.05"}) as r:
                lines = r.iter_lines()
                assert json.loads(next(lines)[len("data: "):])["type"] == "connected"
                proc.send_signal(signal.SIGTERM)
                try:  # the stream ends: cleanly, or cut short (chunked body incomplete)
                    for _ in lines:
                        pass
                except httpx.RemoteProtocolError:
                    pass
        assert proc.wait(30) == 0
        log = proc.stdout.read().decode(errors="replace")
    # Cancelling the stream after the graceful timeout is the server's doing, not an
    # application error: no traceback in the log.
    assert "Traceback" not in log, log
    # The stream got a 200 and data: it has an access-log line (uvicorn's format), even
    # though it never completed.
    assert '"GET /sse?interval=0.05 HTTP/1.1" 200' in log, log


def test_sigterm_with_open_chat_websockets():
    with cli_server("examples.asgi.chat:app", *GRACE) as (url, proc):
        ws_url = url.replace("http://", "ws://") + "/chat/room1"
        with connect(ws_url) as alice, connect(ws_url) as bob:
            assert json.loads(bob.recv(10))["user_count"] == 2
            proc.send_signal(signal.SIGTERM)
            for client in (alice, bob):
                with pytest.raises(ConnectionClosed):
                    while True:  # drain join/leave notices until the server closes
                        client.recv(30)
                # A server going down says so (RFC 6455 7.4.1 1001 "going away", or IANA's
                # 1012 "service restart" as uvicorn sends), not 1011 "internal error".
                assert client.close_code in (1001, 1012), client.close_code
        assert proc.wait(30) == 0
        log = proc.stdout.read().decode(errors="replace")
    assert "Traceback" not in log, log
