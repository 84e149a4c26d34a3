"""The plain-ASGI example apps of examples/asgi/ (seed 002), each served by cymongoose-asgi
and checked as a user would: httpx for HTTP and SSE, websockets for WebSocket clients.
(tests-integration/test_examples.py also starts each of them through its ``Run:`` command.)"""

from __future__ import annotations

import contextlib
import json
import logging

import httpx
import pytest
from apps.asgi_support import wait_for
from cymongoose.asgi.testing import ServerThread
from cymongoose.serving.accesslog import ACCESS_LOGGER_NAME
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from examples.asgi import background, bodies, chat, hello, middleware, sse, websocket_echo

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def servers():
    """One server per example module, started on first use."""
    started: dict[str, ServerThread] = {}
    yield lambda module: started.get(module.__name__) or started.setdefault(
        module.__name__, ServerThread(module.app).__enter__())
    for srv in started.values():
        srv.__exit__(None, None, None)


def ws_url(srv: ServerThread, path: str) -> str:
    return f"ws://127.0.0.1:{srv.port}{path}"


def assert_rejected_with_403(url: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        with connect(url, open_timeout=10):
            pass
    assert info.value.response.status_code == 403


# -- hello: class-based routing; no lifespan support ----------------------------------


def test_hello_routes(servers):
    srv = servers(hello)  # started although the app raises on the lifespan scope
    r = httpx.get(srv.url + "/")
    assert (r.status_code, r.text) == (200, "Hello World")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert httpx.get(srv.url + "/api").json() == {"message": "API Response"}
    missing = httpx.get(srv.url + "/missing")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert httpx.post(srv.url + "/").status_code == 404


def test_hello_debug_scope(servers):
    srv = servers(hello)
    info = httpx.get(srv.url + "/scope", params={"a": "1"}, headers={"X-Demo": "yes"}).json()
    assert (info["type"], info["method"], info["path"]) == ("http", "GET", "/scope")
    assert info["query_string"] == "a=1"
    assert ["x-demo", "yes"] in info["headers"]
    assert info["server"] == ["127.0.0.1", srv.port]
    assert info["asgi"]["version"] == "3.0"


def test_hello_unknown_websocket_is_rejected(servers):
    assert_rejected_with_403(ws_url(servers(hello), "/ws"))


# -- bodies: JSON and forms ---------------------------------------------------------------


def test_json_body_echo(servers):
    srv = servers(bodies)
    data = {"message": "test", "n": [1, 2, {"deep": "café"}]}
    r = httpx.post(srv.url + "/json", json=data)
    assert r.status_code == 200
    assert r.json() == {"received": data, "method": "POST", "path": "/json"}


def test_invalid_json_body(servers):
    r = httpx.post(servers(bodies).url + "/json", content=b"{oops")
    assert (r.status_code, r.text) == (400, "Invalid JSON")


def test_large_json_body(servers):
    data = {"values": list(range(200_000))}  # ~1.3 MB: arrives in several http.request
    r = httpx.post(servers(bodies).url + "/json", json=data, timeout=30)
    assert r.json()["received"] == data


def test_form_body(servers):
    r = httpx.post(servers(bodies).url + "/form",
                   data={"name": "Zoë Ünï", "tag": ["a", "b"], "empty": ""})
    assert r.status_code == 200
    assert r.json() == {"form_data": {"name": ["Zoë Ünï"], "tag": ["a", "b"], "empty": [""]},
                        "method": "POST", "path": "/form"}


# -- websocket_echo -------------------------------------------------------------------------


def test_websocket_echo_text_and_bytes(servers):
    with connect(ws_url(servers(websocket_echo), "/ws")) as ws:
        ws.send("hello")
        assert ws.recv(10) == "Echo: hello"
        ws.send(b"\x00\xffbytes")
        assert ws.recv(10) == b"\x00\xffbytes"


def test_websocket_echo_server_close(servers):
    with connect(ws_url(servers(websocket_echo), "/ws")) as ws:
        ws.send("close")
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
    assert (ws.close_code, ws.close_reason) == (1000, "bye")


def test_websocket_echo_wrong_path_rejected(servers):
    assert_rejected_with_403(ws_url(servers(websocket_echo), "/elsewhere"))


# -- chat: two clients in a room ---------------------------------------------------------


def recv_json(ws) -> dict:
    return json.loads(ws.recv(10))


def test_chat_room_two_clients(servers):
    url = ws_url(servers(chat), "/chat/lobby")
    with connect(url) as alice:
        joined = recv_json(alice)
        assert (joined["type"], joined["room"], joined["user_count"]) == (
            "user_joined", "lobby", 1)
        with connect(url) as bob:
            assert recv_json(alice)["user_count"] == 2
            assert recv_json(bob)["type"] == "user_joined"
            bob.send(json.dumps({"type": "typing"}))  # to the others only
            assert recv_json(alice)["type"] == "typing"
            bob.send(json.dumps({"type": "chat", "message": "héllo"}))
            for client in (alice, bob):
                msg = recv_json(client)
                assert (msg["type"], msg["message"], msg["room"]) == ("chat", "héllo", "lobby")
            bob.send("not json")
            assert recv_json(bob) == {"error": "Invalid JSON"}
        left = recv_json(alice)
        assert (left["type"], left["user_count"]) == ("user_left", 1)


def test_chat_room_ten_clients_see_every_message(servers):
    url = ws_url(servers(chat), "/chat/crowd")
    with contextlib.ExitStack() as stack:
        clients = []
        for n in range(10):
            clients.append(stack.enter_context(connect(url)))
            for client in clients:  # everyone present hears the newcomer join
                assert recv_json(client)["user_count"] == n + 1
        for n, client in enumerate(clients):
            client.send(json.dumps({"type": "chat", "message": f"from {n}"}))
        for client in clients:  # each sees all ten messages, its own included
            got = [recv_json(client)["message"] for _ in range(10)]
            assert sorted(got) == sorted(f"from {n}" for n in range(10))


def test_chat_rooms_are_separate(servers):
    srv = servers(chat)
    with connect(ws_url(srv, "/chat/a")) as a, connect(ws_url(srv, "/chat/b")) as b:
        assert recv_json(a)["user_count"] == 1
        assert recv_json(b)["user_count"] == 1
        a.send(json.dumps({"type": "chat", "message": "only a"}))
        assert recv_json(a)["message"] == "only a"
        b.send(json.dumps({"type": "chat", "message": "only b"}))
        assert recv_json(b)["message"] == "only b"  # b never saw a's message


def test_chat_page(servers):
    r = httpx.get(servers(chat).url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "new WebSocket(" in r.text


# -- middleware -------------------------------------------------------------------------------


def test_middleware_adds_process_time_header(servers, caplog):
    with caplog.at_level(logging.INFO, logger="examples.asgi.middleware"):
        r = httpx.get(servers(middleware).url + "/")
        assert r.text == "Hello from behind three middlewares"
        assert float(r.headers["x-process-time"]) >= 0
        wait_for(lambda: any("HTTP GET / 200" in m for m in caplog.messages),
                 "the logging middleware's line")


def test_middleware_bearer_auth_http(servers):
    url = servers(middleware).url + "/private"
    denied = httpx.get(url)
    assert (denied.status_code, denied.json()) == (401, {"error": "Unauthorized"})
    assert "x-process-time" in denied.headers  # outer middlewares still apply
    ok = httpx.get(url, headers={"Authorization": "Bearer secret-token"})
    assert (ok.status_code, ok.json()) == (200, {"user": "alice"})


def test_middleware_bearer_auth_websocket(servers):
    srv = servers(middleware)
    assert_rejected_with_403(ws_url(srv, "/ws/private"))
    with connect(ws_url(srv, "/ws/private?token=secret-token")) as ws:
        assert ws.recv(10) == "hello alice"
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
    assert ws.close_code == 1000


# -- sse ------------------------------------------------------------------------------------


def read_events(lines, n: int) -> list[dict]:
    events, data = [], None
    for line in lines:
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            events.append(data)
            data = None
            if len(events) == n:
                break
    return events


def test_sse_stream(servers):
    srv = servers(sse)
    with httpx.stream("GET", srv.url + "/sse", params={"count": 5, "interval": 0.01}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["cache-control"] == "no-cache"
        lines = r.iter_lines()
        assert read_events(lines, 1)[0]["type"] == "connected"
        updates = read_events(lines, 5)
        assert [e["counter"] for e in updates] == [1, 2, 3, 4, 5]
        assert [e["message"] for e in updates] == [f"Update #{i}" for i in range(1, 6)]
        assert list(lines) == []  # the response ended after the fifth update


def test_sse_stream_stops_when_client_leaves(servers):
    srv = servers(sse)
    before = httpx.get(srv.url + "/stats").json()["disconnected"]
    with httpx.stream("GET", srv.url + "/sse", params={"interval": 0.05}) as r:  # forever
        assert len(read_events(r.iter_lines(), 3)) == 3
    wait_for(lambda: httpx.get(srv.url + "/stats").json()["disconnected"] > before,
             "the SSE handler to see http.disconnect")


def test_sse_stream_closed_by_client_is_in_the_access_log(servers, caplog):
    # Every response that started is logged (uvicorn's format, as uvicorn does on
    # http.response.start), also a stream that ends because the client left.
    srv = servers(sse)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER_NAME):
        with httpx.stream("GET", srv.url + "/sse", params={"interval": 0.05, "n": "x"}) as r:
            assert len(read_events(r.iter_lines(), 2)) == 2
        wait_for(lambda: any('"GET /sse?interval=0.05&n=x HTTP/1.1" 200' in m
                             for m in caplog.messages), "the SSE request's access-log line")


def test_sse_page(servers):
    r = httpx.get(servers(sse).url + "/")
    assert r.status_code == 200 and "EventSource" in r.text


# -- background ---------------------------------------------------------------------------


def test_background_task_effect(servers):
    srv = servers(background)
    r = httpx.post(srv.url + "/signup", json={"email": "zoe@example.com"})
    assert (r.status_code, r.json()) == (201, {"message": "User created successfully"})

    def delivered():
        return [m for m in httpx.get(srv.url + "/outbox").json() if m["to"] == "zoe@example.com"]

    mail = wait_for(delivered, "the welcome e-mail in the outbox")
    assert mail == [{"to": "zoe@example.com", "subject": "Welcome!",
                     "body": "Thank you for signing up!"}]


def test_background_bad_request(servers):
    r = httpx.post(servers(background).url + "/signup", json={"name": "no email"})
    assert r.status_code == 400
