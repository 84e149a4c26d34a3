"""Hold N idle keep-alive HTTP connections (or N idle WebSockets) open against a server.

Each connection makes one request (``GET PATH``; with ``--websocket``, an RFC 6455
upgrade of PATH) and then stays open, sending nothing. Used by ``run.py``'s idle
workloads: the load generator measures the server while these sockets sit idle.

Protocol on stdout/stdin (one JSON line each):
  -> ``READY {"open": N, "seconds": S}`` once every connection is set up;
  <- ``check`` on stdin -> ``OPEN {"open": K}``: how many are still open (not closed by
     the server, e.g. by its keep-alive timeout);
  stdin at EOF, SIGTERM or SIGINT: close everything and exit 0.

Raises RLIMIT_NOFILE to its hard limit; exits 2 when N does not fit in it.

Usage: python idle_clients.py http://127.0.0.1:PORT/ --count 10000 [--websocket]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
from urllib.parse import urlsplit

IN_FLIGHT = 128  # connection set-ups at a time: stays inside a default listen backlog


def raise_nofile(need: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need + 64)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def request_bytes(host: str, path: str, websocket: bool) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                  "Sec-WebSocket-Version: 13"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response_complete(buf: bytes, websocket: bool) -> bool | None:
    """True when ``buf`` holds a whole response as expected, None while incomplete.

    Raises ValueError for an unexpected status (101 for WebSockets, 200 otherwise).
    """
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    status_line, _, rest = buf[:head_end].partition(b"\r\n")
    parts = status_line.split()
    want = b"101" if websocket else b"200"
    if len(parts) < 2 or parts[1] != want:
        raise ValueError(f"unexpected status line {status_line[:80]!r}")
    if websocket:
        return True
    length = 0
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return True if len(buf) - head_end - 4 >= length else None


def open_idle(host: str, port: int, path: str, count: int, websocket: bool) -> list:
    """Open ``count`` connections, each having made one request; return the sockets."""
    sel = selectors.DefaultSelector()
    request = request_bytes(f"{host}:{port}", path, websocket)
    done: list[socket.socket] = []
    pending = 0
    started = 0
    state: dict[socket.socket, list] = {}

    def start_one() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        state[s] = [False, b""]  # request sent, response bytes
        sel.register(s, selectors.EVENT_WRITE)

    deadline = time.monotonic() + 60 + count / 100
    while len(done) < count:
        while started < count and pending < IN_FLIGHT:
            start_one()
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(done)} of {count} connections set up")
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            sent, buf = state[s]
            if not sent:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect: {os.strerror(err)}")
                s.send(request)
                state[s][0] = True
                sel.modify(s, selectors.EVENT_READ)
                continue
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("server closed a connection before answering")
            buf += chunk
            state[s][1] = buf
            if response_complete(buf, websocket):
                sel.unregister(s)
                del state[s]
                done.append(s)
                pending -= 1
    sel.close()
    return done


def still_open(socks: list) -> int:
    """Count sockets the server has not closed (no EOF or error waiting on them)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    for key, _ in sel.select(timeout=0):
        try:
            if not key.fileobj.recv(65536, socket.MSG_PEEK):
                closed += 1
        except OSError:
            closed += 1
    sel.close()
    return len(socks) - closed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="http://HOST:PORT/PATH (ws:// is accepted too)")
    parser.add_argument("--count", type=int, required=True, help="connections to hold")
    parser.add_argument("--websocket", action="store_true",
                        help="upgrade each connection to a WebSocket (expects 101)")
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    host, port, path = url.hostname or "127.0.0.1", url.port or 80, url.path or "/"
    limit = raise_nofile(args.count)
    if args.count + 32 > limit:
        print(f"--count {args.count} does not fit RLIMIT_NOFILE {limit}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    socks = open_idle(host, port, path, args.count, args.websocket) if args.count else []
    ready = {"open": len(socks), "seconds": round(time.monotonic() - started, 2)}
    print("READY " + json.dumps(ready), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "check":
                print("OPEN " + json.dumps({"open": still_open(socks)}), flush=True)
    except KeyboardInterrupt:
        pass
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
