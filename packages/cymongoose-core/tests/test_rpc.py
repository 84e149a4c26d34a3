"""JSON-RPC dispatch (Rpc / RpcReq), also over a WebSocket like mongoose's json-rpc example."""

from __future__ import annotations

import json

import cymongoose as m
import pytest
from cymongoose import MG_EV_HTTP_MSG, MG_EV_WS_MSG, Rpc
from websockets.sync.client import connect


def make_rpc():
    rpc = Rpc()

    def add(req):
        a, b = json.loads(req.params)
        req.ok(json.dumps(a + b))

    rpc.add("sum", add)
    rpc.add("echo.*", lambda req: req.ok(req.params or "null"))
    rpc.add("fail", lambda req: req.err(-7, 'bad "input"'))
    rpc.add("silent", lambda req: None)
    return rpc


def test_rpc_process():
    rpc = make_rpc()
    assert rpc.methods == ["sum", "echo.*", "fail", "silent"]
    assert json.loads(rpc.process('{"id": 1, "method": "sum", "params": [2, 3]}')) == {
        "id": 1,
        "result": 5,
    }
    assert json.loads(rpc.process('{"id": "x", "method": "echo.a", "params": {"k": [1]}}')) == {
        "id": "x",
        "result": {"k": [1]},
    }
    assert json.loads(rpc.process('{"id": 2, "method": "fail"}')) == {
        "id": 2,
        "error": {"code": -7, "message": 'bad "input"'},
    }
    assert json.loads(rpc.process('{"id": 3, "method": "nope"}'))["error"]["code"] == -32601
    assert json.loads(rpc.process('{"id": 4}'))["error"]["code"] == -32600
    assert rpc.process('{"method": "sum", "params": [1, 1]}') == ""  # notification
    assert rpc.process('{"id": 5, "method": "silent"}') == ""


def test_rpc_misuse():
    rpc = Rpc()
    with pytest.raises(TypeError, match="handler"):
        rpc.add("x", 1)
    with pytest.raises(ValueError, match="method"):
        rpc.add("", print)
    with pytest.raises(TypeError, match="frame"):
        rpc.process(1)

    def boom(req):
        raise KeyError("inside")

    rpc.add("boom", boom)
    with pytest.raises(KeyError):
        rpc.process('{"id": 1, "method": "boom"}')
    rpc.add("badmsg", lambda req: req.err(1, 2))
    with pytest.raises(TypeError, match="message"):
        rpc.process('{"id": 1, "method": "badmsg"}')


def test_rpc_over_websocket(serve):
    rpc = make_rpc()

    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            c.ws_upgrade(data)
        elif ev == MG_EV_WS_MSG:
            c.ws_send(rpc.process(data.data))

    srv = serve(handler)
    with connect(srv.ws_url + "/rpc") as ws:
        ws.send('{"id": 9, "method": "sum", "params": [40, 2]}')
        assert json.loads(ws.recv(timeout=5)) == {"id": 9, "result": 42}
    assert m.RpcReq is not None
