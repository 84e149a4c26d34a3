"""Manager.wakeup: thread-safe delivery of MG_EV_WAKEUP payloads of any size."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest
from cymongoose import MG_EV_ACCEPT, MG_EV_WAKEUP, Manager

N_THREADS = 8
SIZES = [0, 1, 2, 7, 100, 1023, 4096, 4097, 65535, 65536, 300_000, 1 << 20]


def test_wakeup_many_threads_large_payloads(serve):
    accepted = []
    received: dict[int, list[bytes]] = {}
    types = set()
    lock = threading.Lock()
    total = N_THREADS * len(SIZES) * 2
    done = threading.Event()
    count = [0]

    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            received[c.id] = []
            accepted.append(c)
        elif ev == MG_EV_WAKEUP:
            types.add(type(data))
            received[c.id].append(data)
            count[0] += 1
            if count[0] == total:
                done.set()

    srv = serve(handler, "tcp://127.0.0.1:0", enable_wakeup=True)
    assert srv.mgr.wakeup_id != 0
    socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(N_THREADS)]
    try:
        deadline = time.monotonic() + 30
        while len(accepted) < N_THREADS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(accepted) == N_THREADS
        targets = [c.id for c in accepted]

        sent: dict[int, list[bytes]] = {}
        barrier = threading.Barrier(N_THREADS)
        failures = []

        def worker(i):
            rng = random.Random(i)
            sizes = SIZES * 2
            rng.shuffle(sizes)
            payloads = [rng.randbytes(n) for n in sizes]
            with lock:
                sent[targets[i]] = payloads
            barrier.wait()
            for p in payloads:
                if not srv.mgr.wakeup(targets[i], p):
                    failures.append((i, len(p)))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert done.wait(30), f"only {count[0]} of {total} wakeups arrived"
        time.sleep(0.05)
        assert count[0] == total
        assert types == {bytes}
        for cid in targets:
            got, want = received[cid], sent[cid]
            assert len(got) == len(want)
            assert [len(p) for p in got] == [len(p) for p in want]
            assert got == want
    finally:
        for s in socks:
            s.close()
    assert srv.errors == []


def test_wakeup_default_payload_and_str(serve):
    got = []
    ready = threading.Event()
    accepted = []

    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            accepted.append(c)
        elif ev == MG_EV_WAKEUP:
            got.append(data)
            if len(got) == 2:
                ready.set()

    srv = serve(handler, "tcp://127.0.0.1:0", enable_wakeup=True)
    with socket.create_connection(("127.0.0.1", srv.port)):
        deadline = time.monotonic() + 30
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.mgr.wakeup(accepted[0].id) is True
        assert srv.mgr.wakeup(accepted[0].id, "héllo") is True
        assert ready.wait(30)
    assert got == [b"", "héllo".encode()]


def test_wakeup_unknown_connection_returns_false():
    with Manager(enable_wakeup=True) as m:
        assert m.wakeup(987654321, b"x") is False


def test_wakeup_listener_connection():
    got = []
    with Manager(enable_wakeup=True) as m:
        lst = m.listen(
            "tcp://127.0.0.1:0", lambda c, ev, d: got.append(d) if ev == MG_EV_WAKEUP else None
        )
        assert m.wakeup(lst.id, b"abc")
        for _ in range(5):
            m.poll(10)
            if got:
                break
    assert got == [b"abc"]


def test_wakeup_without_enable_raises():
    with Manager() as m:
        assert m.wakeup_id == 0
        lst = m.listen("tcp://127.0.0.1:0")
        with pytest.raises(RuntimeError, match="enable_wakeup"):
            m.wakeup(lst.id, b"x")


def test_wakeup_rejects_bad_payload_type():
    with Manager(enable_wakeup=True) as m:
        lst = m.listen("tcp://127.0.0.1:0")
        with pytest.raises(TypeError):
            m.wakeup(lst.id, 12345)
