"""cymongoose 0.2.x calls of ``WSGIServer`` and ``serve`` run unchanged, by position and by
name: ``WSGIServer(app, workers=4, error_handler=None, stream_timeout=5.0)``,
``listen(url)``, ``run(poll_ms=100)``, ``close()``, ``serve(app, url, workers,
stream_timeout)``. What came later (``config``, ``threads``, ServerConfig fields) is
keyword-only."""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest
from cymongoose.serving.config import ServerConfig

from cymongoose.wsgi import WSGIServer, serve

pytestmark = pytest.mark.pooled_only("pool sizes and subprocesses")

OLD_POSITIONAL = {
    WSGIServer: ["app", "workers", "error_handler", "stream_timeout"],
    WSGIServer.listen: ["self", "url"],
    WSGIServer.run: ["self", "poll_ms"],
    WSGIServer.close: ["self"],
    serve: ["app", "url", "workers", "stream_timeout"],
}


def hello(environ, start_response):
    body = threading.current_thread().name.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


@pytest.mark.parametrize("func", list(OLD_POSITIONAL), ids=lambda f: f.__qualname__)
def test_old_parameters_keep_their_names_and_places(func):
    params = list(inspect.signature(func).parameters.values())
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == OLD_POSITIONAL[func]
    P = inspect.Parameter
    assert {p.kind for p in params} <= {P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY, P.VAR_KEYWORD}


def test_run_keeps_0_2_defaults():
    assert inspect.signature(WSGIServer.run).parameters["poll_ms"].default == 100
    assert inspect.signature(WSGIServer).parameters["stream_timeout"].default == 5.0


def run_in_thread(server):
    thread = threading.Thread(target=server.run, kwargs={"poll_ms": 20}, daemon=True)
    thread.start()
    return thread


def stop(server, thread):
    server.shutdown()
    thread.join(30)
    assert not thread.is_alive()


@pytest.mark.parametrize("by", ["position", "name"])
def test_wsgiserver_0_2_arguments(by):
    errors = []
    args = (hello, 3, errors.append, 2.5)
    if by == "position":
        server = WSGIServer(*args)
    else:
        server = WSGIServer(**dict(zip(OLD_POSITIONAL[WSGIServer], args, strict=True)))
    assert (server.workers, server.stream_timeout) == (3, 2.5)
    conn = server.listen("http://127.0.0.1:0") if by == "position" else \
        server.listen(url="http://127.0.0.1:0")
    thread = run_in_thread(server)
    try:
        names = {httpx.get(f"http://127.0.0.1:{conn.local_addr[1]}/").text for _ in range(6)}
        assert names <= {f"cymongoose-wsgi-{i}" for i in range(3)}
    finally:
        stop(server, thread)
    server.close()  # idempotent, as in 0.2.x


def test_error_handler_by_position_receives_event_loop_errors():
    errors = []
    server = WSGIServer(hello, 1, errors.append)
    try:
        # The error handler is the Manager's: an exception raised by a timer callback
        # (on the event loop) goes to it.
        server.manager.timer_add(1, lambda: 1 / 0)
        deadline = time.monotonic() + 30
        while not errors and time.monotonic() < deadline:
            server.manager.poll(10)
        assert isinstance(errors[0], ZeroDivisionError)
    finally:
        server.close()


def test_config_and_threads_are_keyword_only():
    config = ServerConfig(threads=2, access_log=False)
    server = WSGIServer(hello, config=config)
    assert server.workers == 2
    server.close()
    server = WSGIServer(hello, threads=5)
    assert server.workers == 5
    server.close()


def test_a_config_in_the_workers_place_says_where_it_goes():
    with pytest.raises(TypeError, match="config="):
        WSGIServer(hello, ServerConfig())
    with pytest.raises(TypeError, match="config="):
        serve(hello, ServerConfig())
    with pytest.raises(TypeError, match="workers"):
        WSGIServer(hello, "8")


SERVE = textwrap.dedent(
    """
    import logging, sys
    from cymongoose.wsgi import serve

    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    url = "http://127.0.0.1:" + sys.argv[1]
    if sys.argv[2] == "position":
        serve(hello, url, 7, 2.0)
    else:
        serve(app=hello, url=url, workers=7, stream_timeout=2.0)
    print("serve returned", file=sys.stderr)
    """
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("by", ["position", "name"])
def test_serve_0_2_arguments(by):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port), by],
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve() never answered"
                time.sleep(0.1)
        assert r.text == "hello"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"cymongoose running on http://127.0.0.1:{port} " in err
    assert "Running the WSGI app in 7 threads" in err
    assert "serve returned" in err
