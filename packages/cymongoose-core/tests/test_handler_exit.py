"""A handler's SystemExit or KeyboardInterrupt stops the program (poll() raises it);
other exceptions go to the error handler and the loop goes on."""

import socket

import pytest
from cymongoose import MG_EV_HTTP_MSG, Manager


def _serve_one_request(exc):
    seen = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            raise exc

    mgr = Manager(handler, error_handler=seen.append)
    listener = mgr.listen("http://127.0.0.1:0", http=True)
    client = socket.create_connection(("127.0.0.1", listener.local_addr[1]))
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return mgr, client, seen


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_poll_raises_a_handlers_exit(exc):
    mgr, client, seen = _serve_one_request(exc)
    try:
        with pytest.raises(type(exc)) as info:
            for _ in range(100):
                mgr.poll(20)
        assert info.value is exc and seen == []
        mgr.poll(0)  # raised once; the manager still works
    finally:
        client.close()
        mgr.close()


def test_other_exceptions_go_to_the_error_handler():
    mgr, client, seen = _serve_one_request(ValueError("boom"))
    try:
        for _ in range(100):
            mgr.poll(20)
            if seen:
                break
        assert [type(e) for e in seen] == [ValueError]
    finally:
        client.close()
        mgr.close()
