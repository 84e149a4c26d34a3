"""Manager lifecycle, listen errors, constants."""

from __future__ import annotations

import socket

import cymongoose
import pytest
from cymongoose import Manager, event_name


def test_close_twice_ok():
    m = Manager()
    m.listen("http://127.0.0.1:0")
    m.close()
    m.close()
    assert m.closed


def test_context_manager_closes():
    with Manager() as m:
        m.listen("tcp://127.0.0.1:0")
        assert not m.closed
    assert m.closed


def test_calls_after_close_raise():
    m = Manager(enable_wakeup=True)
    lst = m.listen("http://127.0.0.1:0")
    lid = lst.id
    assert lst in m.connections
    m.close()
    assert m.connections == ()
    for call in (
        lambda: m.poll(0),
        lambda: m.run(10),
        lambda: m.listen("http://127.0.0.1:0"),
        lambda: m.connect("http://127.0.0.1:1"),
        lambda: m.mqtt_listen("mqtt://127.0.0.1:0"),
        lambda: m.timer_add(10, lambda: None),
        lambda: m.wakeup(lid, b"x"),
    ):
        with pytest.raises(RuntimeError, match="^Manager has been freed$"):
            call()


def test_closed_connection_behaves_as_0_2_5():
    m = Manager(enable_wakeup=True)
    lst = m.listen("http://127.0.0.1:0")
    lst.userdata = "kept"
    m.close()
    # State reads give 0.2.5's values, close/drain do nothing, the rest raises.
    assert (lst.id, lst.local_addr, lst.remote_addr) == (0, None, None)
    assert lst.is_closing and not lst.is_listening and not lst.is_draining
    assert (lst.recv_len, lst.send_len, lst.recv_size, lst.send_size) == (0, 0, 0, 0)
    assert (lst.recv_data(), lst.send_data(4)) == (b"", b"")
    assert lst.close() is None and lst.drain() is None
    assert lst.userdata == "kept"
    for touch in (
        lambda: lst.send(b"x"),
        lambda: lst.reply(200, b"x"),
        lambda: lst.ws_send(b"x"),
        lambda: lst.http_chunk(b"x"),
        lambda: lst.resolve("tcp://127.0.0.1:1"),
        lambda: lst.send_response(200, [], b""),
    ):
        with pytest.raises(RuntimeError, match="^Connection has been closed$"):
            touch()


def test_listen_bad_url_raises():
    with Manager() as m:
        with pytest.raises(RuntimeError, match="^Failed to listen on 'http://no-such-host.invalid:0'$"):
            m.listen("http://no-such-host.invalid:0")
        with pytest.raises(RuntimeError, match="^Failed to listen for MQTT on 'tcp://bad host:0'$"):
            m.mqtt_listen("tcp://bad host:0")
        with pytest.raises(RuntimeError, match="^Failed to connect to ''$"):
            m.connect("")


def test_listen_port_in_use_raises():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with Manager() as m:
            url = f"tcp://127.0.0.1:{port}"
            with pytest.raises(RuntimeError, match=str(port)):
                m.listen(url)
            assert m.connections == ()


def test_listen_port_zero_gives_ephemeral_port():
    with Manager() as m:
        a = m.listen("http://127.0.0.1:0")
        b = m.listen("tcp://127.0.0.1:0")
        assert a.local_addr[1] != 0 and b.local_addr[1] != 0
        assert a.local_addr[1] != b.local_addr[1]
        assert a.is_listening and b.is_listening
        assert set(m.connections) == {a, b}


def test_handler_type_checked():
    with pytest.raises(TypeError):
        Manager(handler=42)
    with pytest.raises(TypeError):
        Manager(error_handler="x")
    with Manager() as m:
        with pytest.raises(TypeError):
            m.listen("tcp://127.0.0.1:0", handler=1)


EVENTS = [
    "MG_EV_ERROR", "MG_EV_OPEN", "MG_EV_POLL", "MG_EV_RESOLVE", "MG_EV_CONNECT",
    "MG_EV_ACCEPT", "MG_EV_TLS_HS", "MG_EV_READ", "MG_EV_WRITE", "MG_EV_CLOSE",
    "MG_EV_HTTP_HDRS", "MG_EV_HTTP_MSG", "MG_EV_WS_OPEN", "MG_EV_WS_MSG", "MG_EV_WS_CTL",
    "MG_EV_MQTT_CMD", "MG_EV_MQTT_MSG", "MG_EV_MQTT_OPEN", "MG_EV_SNTP_TIME",
    "MG_EV_WAKEUP", "MG_EV_USER",
]  # fmt: skip


def test_event_constants():
    values = [getattr(cymongoose, name) for name in EVENTS]
    assert all(isinstance(v, int) for v in values)
    # mongoose 7.23's enum order: MG_EV_ERROR is 0, MG_EV_WAKEUP is 19, MG_EV_USER is 23.
    assert values[:-1] == list(range(20))
    assert cymongoose.MG_EV_USER == 23


def test_event_name():
    for name in EVENTS:
        assert event_name(getattr(cymongoose, name)) == name
    assert event_name(cymongoose.MG_EV_USER + 1) == "MG_EV_USER+1"
    assert event_name(cymongoose.MG_EV_USER + 100) == "MG_EV_USER+100"
    assert event_name(-1) == "MG_EV_UNKNOWN(-1)"
    assert event_name(21) == "MG_EV_UNKNOWN(21)"


def test_websocket_opcodes_and_log_levels():
    # RFC 6455 section 5.2 opcodes
    assert cymongoose.WEBSOCKET_OP_TEXT == 1
    assert cymongoose.WEBSOCKET_OP_BINARY == 2
    assert cymongoose.WEBSOCKET_OP_PING == 9
    assert cymongoose.WEBSOCKET_OP_PONG == 10
    levels = [cymongoose.MG_LL_NONE, cymongoose.MG_LL_ERROR, cymongoose.MG_LL_INFO,
              cymongoose.MG_LL_DEBUG, cymongoose.MG_LL_VERBOSE]  # fmt: skip
    assert levels == sorted(levels) and len(set(levels)) == 5


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_run_stops_on_signal_while_no_handler_runs(sig):
    # A listener that sees no events: no Python code runs between polls, so the
    # signal must be noticed by run() itself.
    import signal
    import subprocess
    import sys

    # "ready" comes from a one-shot timer: run() has set its signal handlers by then.
    code = ("from cymongoose import Manager\n"
            "m = Manager(); m.listen('tcp://127.0.0.1:0')\n"
            "m.timer_add(50, lambda: print('ready', flush=True))\n"
            "m.run(poll_ms=200); print('stopped', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(getattr(signal, sig))
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.strip() == "stopped" and proc.returncode == 0
