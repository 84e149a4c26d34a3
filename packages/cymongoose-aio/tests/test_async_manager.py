"""AsyncManager over real sockets, in both modes (integrated and threaded)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from cymongoose import MG_EV_HTTP_MSG, MG_EV_WAKEUP, Manager
from cymongoose.aio import AsyncManager

pytestmark = pytest.mark.timeout(60)

_HAS_EPOLL = Manager().epoll_fd >= 0

MODES = [
    pytest.param(
        "integrated",
        marks=pytest.mark.skipif(not _HAS_EPOLL, reason="integrated mode needs epoll"),
    ),
    "threaded",
]


@pytest.fixture(params=MODES)
def mode(request) -> str:
    return request.param


def _port(conn) -> int:
    return conn.local_addr[1]


def _poll_thread_name(mode: str) -> str:
    return "MainThread" if mode == "integrated" else "cymongoose-poll"


async def _until(done, timeout_s: float = 30.0) -> None:
    """Wait until ``done()`` is true; AssertionError after ``timeout_s`` (a safety bound,
    not a measured duration)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


# Tests that a poll is interrupted (not waited out) chain several round trips: one that
# waited for poll_interval=200 ms each would take >= N * 0.2 s, far above the bound, while
# a loaded machine stays well below it.


def hello(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, b"Hello from async!")


async def _raw_get(port: int, path: str = "/", count: int = 1) -> list[bytes]:
    """``count`` keep-alive GETs on one raw socket; returns the bodies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    bodies = []
    try:
        for _ in range(count):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            bodies.append(await reader.readexactly(length))
    finally:
        writer.close()
    return bodies


def test_mode_argument_and_property(mode):
    async def main():
        am = AsyncManager(hello, mode=mode)
        assert am.mode == mode
        async with am:
            assert am.mode == mode
            assert am.running
        assert not am.running

    asyncio.run(main())


def test_auto_mode_prefers_integrated():
    async def main():
        async with AsyncManager(hello) as am:
            return am.mode

    assert asyncio.run(main()) == ("integrated" if _HAS_EPOLL else "threaded")


def test_invalid_mode():
    with pytest.raises(ValueError, match="mode"):
        AsyncManager(mode="fast")


def test_integrated_mode_starts_no_thread():
    if not _HAS_EPOLL:
        pytest.skip("integrated mode needs epoll")

    async def main():
        before = threading.active_count()
        async with AsyncManager(hello, mode="integrated") as am:
            listener = am.listen("http://127.0.0.1:0")
            assert await _raw_get(_port(listener)) == [b"Hello from async!"]
            assert threading.active_count() == before

    asyncio.run(main())


def test_listen_and_serve(mode):
    async def main():
        async with AsyncManager(hello, mode=mode) as am:
            assert am.running
            listener = am.listen("http://127.0.0.1:0")
            url = f"http://127.0.0.1:{_port(listener)}/"
            async with httpx.AsyncClient() as client:
                for _ in range(5):
                    r = await client.get(url)
                    assert r.status_code == 200
                    assert r.text == "Hello from async!"
        assert not am.running

    asyncio.run(main())


def test_uvloop(mode):
    uvloop = pytest.importorskip("uvloop")

    async def main():
        async with AsyncManager(hello, mode=mode) as am:
            listener = am.listen("http://127.0.0.1:0")
            bodies = await _raw_get(_port(listener), count=20)
            return am.mode, bodies

    got_mode, bodies = uvloop.run(main())
    assert got_mode == mode
    assert bodies == [b"Hello from async!"] * 20


def test_keep_alive_latency(mode):
    """Responses go out at once, not at the next housekeeping poll (poll_interval)."""

    async def main():
        async with AsyncManager(hello, mode=mode, poll_interval=200) as am:
            listener = am.listen("http://127.0.0.1:0")
            await _raw_get(_port(listener))  # warm up
            start = time.perf_counter()
            bodies = await _raw_get(_port(listener), count=50)
            return time.perf_counter() - start, bodies

    elapsed, bodies = asyncio.run(main())
    assert bodies == [b"Hello from async!"] * 50
    # Waiting for the housekeeping poll would cost ~0.2 s per request (10 s).
    assert elapsed < 3.0, f"50 keep-alive requests took {elapsed:.3f}s"


def test_per_listener_handler_and_poll_thread(mode):
    threads = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            threads.append(threading.current_thread().name)
            conn.reply(201, data.uri.encode())

    async def main():
        async with AsyncManager(mode=mode) as am:
            listener = am.listen("http://127.0.0.1:0", handler)
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{_port(listener)}/abc")
        return r

    r = asyncio.run(main())
    assert (r.status_code, r.text) == (201, "/abc")
    assert threads == [_poll_thread_name(mode)]


def test_schedule_coroutine_from_handler(mode):
    results = []

    async def record(uri: str):
        await asyncio.sleep(0)
        results.append((uri, threading.current_thread() is threading.main_thread()))

    am = AsyncManager(mode=mode)

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            am.schedule(record(data.uri))
            am.schedule(lambda: results.append("callback"))
            conn.reply(200, b"Accepted")

    async def main():
        async with am:
            listener = am.listen("http://127.0.0.1:0", handler)
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{_port(listener)}/job")
            assert r.text == "Accepted"
            await _until(lambda: len(results) == 2)

    asyncio.run(main())
    assert ("/job", True) in results and "callback" in results


def test_coroutine_replies_through_call_in_poll_thread(mode):
    """A handler defers its answer to a coroutine, which writes without waiting a poll."""
    am = AsyncManager(mode=mode, poll_interval=200)

    async def answer(conn, uri):
        await asyncio.sleep(0.001)
        am.call_in_poll_thread(conn.reply, 200, f"async {uri}".encode())

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            am.schedule(answer(conn, data.uri))

    async def main():
        async with am:
            listener = am.listen("http://127.0.0.1:0", handler)
            start = time.perf_counter()
            bodies = await _raw_get(_port(listener), "/x", count=20)
            return time.perf_counter() - start, bodies

    elapsed, bodies = asyncio.run(main())
    assert bodies == [b"async /x"] * 20
    assert elapsed < 2.0  # not ~0.2 s (poll_interval) per request


def test_schedule_rejects_other_objects(mode):
    async def main():
        async with AsyncManager(mode=mode) as am:
            with pytest.raises(TypeError, match="coroutine or a callable"):
                am.schedule(42)

    asyncio.run(main())


def test_timer_one_shot_and_repeat(mode):
    async def main():
        fired = []
        # Threaded mode: timers fire between polls, their resolution is poll_interval.
        async with AsyncManager(poll_interval=10, mode=mode) as am:
            am.timer_add(20, lambda: fired.append("once"))
            timer = am.timer_add(10, lambda: fired.append("tick"), repeat=True)
            await _until(lambda: fired.count("tick") >= 3 and "once" in fired)
            timer.cancel()
            ticks = fired.count("tick")
            await asyncio.sleep(0.1)
            assert fired.count("tick") <= ticks + 1  # one may have been on its way
        assert fired.count("once") == 1

    asyncio.run(main())


def test_timer_fires_before_poll_interval():
    """Integrated mode wakes up for a due timer instead of waiting for the next tick
    (threaded mode's timer resolution is poll_interval)."""
    if not _HAS_EPOLL:
        pytest.skip("integrated mode needs epoll")
    mode = "integrated"

    async def main():
        fired: list[float] = []
        ticks: list[float] = []
        async with AsyncManager(poll_interval=200, mode=mode) as am:
            start = time.monotonic()

            def link() -> None:  # 20 one-shot timers, each added by the one before
                fired.append(time.monotonic() - start)
                if len(fired) < 20:
                    am.timer_add(10, link)

            am.timer_add(30, link)
            timer = am.timer_add(20, lambda: ticks.append(time.monotonic() - start),
                                 repeat=True)
            await _until(lambda: len(fired) == 20 and len(ticks) >= 10)
            timer.cancel()
        return fired, ticks

    fired, ticks = asyncio.run(main())
    assert fired[0] > 0.029  # never before it is due
    # Waiting for the 200 ms tick would take >= 4 s for the chain, >= 2 s for 10 ticks.
    assert fired[-1] < 2.0
    assert ticks[9] < 1.5


def test_wakeup_delivers_payload(mode):
    got = []
    done = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            got.append((data, threading.current_thread().name))
            done.set()

    async def main():
        async with AsyncManager(handler, mode=mode) as am:
            listener = am.listen("http://127.0.0.1:0")
            big = bytes(range(256)) * 400  # larger than the wakeup pipe
            assert am.wakeup(listener.id, big)
            await asyncio.get_running_loop().run_in_executor(None, done.wait, 5)
            return big

    big = asyncio.run(main())
    assert got == [(big, _poll_thread_name(mode))]


def test_wakeup_from_other_threads(mode):
    got = []
    all_in = asyncio.Event()

    async def main():
        loop = asyncio.get_running_loop()

        def handler(conn, ev, data):
            if ev == MG_EV_WAKEUP:
                got.append(data)
                if len(got) == 400:
                    loop.call_soon_threadsafe(all_in.set)

        async with AsyncManager(handler, mode=mode, poll_interval=200) as am:
            listener = am.listen("http://127.0.0.1:0")

            def sender(n: int) -> None:
                for i in range(100):
                    assert am.wakeup(listener.id, f"{n}:{i}".encode())

            threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            await asyncio.wait_for(all_in.wait(), 30)

    asyncio.run(main())
    assert sorted(got) == sorted(f"{n}:{i}".encode() for n in range(4) for i in range(100))
    for n in range(4):  # each thread's payloads arrive in order
        mine = [g for g in got if g.startswith(f"{n}:".encode())]
        assert mine == [f"{n}:{i}".encode() for i in range(100)]


def test_wakeup_interrupts_a_long_poll(mode):
    delivered = threading.Semaphore(0)

    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            delivered.release()

    async def main():
        async with AsyncManager(handler, mode=mode, poll_interval=200) as am:
            listener = am.listen("http://127.0.0.1:0")

            def round_trips() -> float:  # each waits for its delivery
                start = time.monotonic()
                for _ in range(20):
                    assert am.wakeup(listener.id, b"x")
                    assert delivered.acquire(timeout=30)
                return time.monotonic() - start

            return await asyncio.get_running_loop().run_in_executor(None, round_trips)

    assert asyncio.run(main()) < 2.0  # woken at once, not at poll_interval (>= 4 s)


def test_call_in_poll_thread_is_ordered_and_batched(mode):
    async def main():
        seen = []
        async with AsyncManager(poll_interval=200, mode=mode) as am:
            for i in range(100):
                am.call_in_poll_thread(
                    lambda i=i: seen.append((i, threading.current_thread().name))
                )
            await _until(lambda: len(seen) == 100)
            start = time.monotonic()
            for i in range(20):  # round trips, each after the poll thread went back to poll
                am.call_in_poll_thread(seen.append, i)
                await _until(lambda i=i: seen[-1] == i)
            elapsed = time.monotonic() - start
        assert [i for i, _ in seen[:100]] == list(range(100))
        assert {name for _, name in seen[:100]} == {_poll_thread_name(mode)}
        assert elapsed < 2.0  # the wakeup interrupted each 200 ms poll (>= 4 s if not)

    asyncio.run(main())


def test_call_in_poll_thread_from_other_thread(mode):
    async def main():
        seen = []
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        async with AsyncManager(poll_interval=200, mode=mode) as am:

            def worker() -> None:
                for i in range(50):
                    am.call_in_poll_thread(
                        lambda i=i: seen.append((i, threading.current_thread().name))
                    )
                am.call_in_poll_thread(loop.call_soon_threadsafe, done.set)

            threading.Thread(target=worker, name="worker").start()
            await asyncio.wait_for(done.wait(), 30)
        assert [i for i, _ in seen] == list(range(50))
        assert {name for _, name in seen} == {_poll_thread_name(mode)}

    asyncio.run(main())


def test_listen_from_other_thread(mode):
    async def main():
        async with AsyncManager(hello, mode=mode) as am:
            listener = await asyncio.get_running_loop().run_in_executor(
                None, am.listen, "http://127.0.0.1:0"
            )
            return await _raw_get(_port(listener))

    assert asyncio.run(main()) == [b"Hello from async!"]


def test_listen_interrupts_long_poll(mode):
    async def main():
        async with AsyncManager(hello, poll_interval=200, mode=mode) as am:
            took = 0.0
            for _ in range(20):
                await asyncio.sleep(0.02)  # threaded: the poll thread is back in poll(200)
                start = time.monotonic()
                am.listen("http://127.0.0.1:0")
                took += time.monotonic() - start
            return took

    assert asyncio.run(main()) < 1.5  # not ~0.18 s (the rest of a poll) each


def test_handler_exception_goes_to_error_handler(mode):
    errors = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/boom":
                raise ValueError("boom")
            conn.reply(200, b"ok")

    async def main():
        async with AsyncManager(handler, error_handler=errors.append, mode=mode) as am:
            listener = am.listen("http://127.0.0.1:0")
            base = f"http://127.0.0.1:{_port(listener)}"
            async with httpx.AsyncClient(timeout=1.0) as client:
                with pytest.raises(httpx.HTTPError):
                    await client.get(base + "/boom")
            # The loop survived the exception.
            async with httpx.AsyncClient() as client:
                r = await client.get(base + "/")
            assert r.text == "ok"

    asyncio.run(main())
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_call_in_poll_thread_exception_goes_to_error_handler(mode):
    errors = []

    def boom():
        raise KeyError("cb")

    async def main():
        async with AsyncManager(error_handler=errors.append, mode=mode) as am:
            am.call_in_poll_thread(boom)
            await _until(lambda: errors)

    asyncio.run(main())
    assert len(errors) == 1 and isinstance(errors[0], KeyError)


def test_shutdown_closes_manager_and_refuses_after(mode):
    async def main():
        am = AsyncManager(hello, mode=mode)
        async with am:
            listener = am.listen("http://127.0.0.1:0")
            port = _port(listener)
        assert not am.running
        with pytest.raises(RuntimeError):
            am.listen("http://127.0.0.1:0")
        return port

    port = asyncio.run(main())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)


def test_clean_shutdown_with_open_connections(mode):
    async def main():
        am = AsyncManager(hello, mode=mode)
        async with am:
            listener = am.listen("http://127.0.0.1:0")
            port = _port(listener)
            clients = []
            for _ in range(20):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await reader.readuntil(b"Hello from async!")
                clients.append((reader, writer))
            known = len(am.manager.connections)
            idle = socket.create_connection(("127.0.0.1", port))  # never sends a byte
            await _until(lambda: len(am.manager.connections) > known)  # accepted
            start = time.monotonic()
        elapsed = time.monotonic() - start
        for reader, writer in clients:  # every keep-alive connection sees EOF
            assert await asyncio.wait_for(reader.read(), 30) == b""
            writer.close()
        idle.settimeout(30)
        assert idle.recv(10) == b""
        idle.close()
        return elapsed

    assert asyncio.run(main()) < 10.0  # closed, not waited for (shutdown_timeout: 30 s)


def test_many_concurrent_clients(mode):
    n = 1000

    async def main():
        async with AsyncManager(hello, mode=mode) as am:
            listener = am.listen("http://127.0.0.1:0")
            port = _port(listener)
            sem = asyncio.Semaphore(n)  # all at once; the backlog absorbs bursts

            async def one(i: int) -> bytes:
                async with sem:
                    for attempt in range(5):
                        try:
                            return (await _raw_get(port, f"/{i}"))[0]
                        except (ConnectionError, asyncio.IncompleteReadError):
                            await asyncio.sleep(0.05 * (attempt + 1))
                    raise AssertionError(f"client {i} failed 5 times")

            start = time.monotonic()
            bodies = await asyncio.gather(*(one(i) for i in range(n)))
            return time.monotonic() - start, bodies

    elapsed, bodies = asyncio.run(main())
    assert bodies == [b"Hello from async!"] * n
    assert elapsed < 20


def test_shutdown_timeout_abandons_blocked_thread():
    """Threaded mode only: in integrated mode a blocked handler blocks the loop itself."""
    release = threading.Event()
    entered = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            entered.set()
            release.wait(10)
            conn.reply(200, b"late")

    async def main():
        am = AsyncManager(handler, shutdown_timeout=0.2, mode="threaded")
        await am.start()
        listener = am.listen("http://127.0.0.1:0")
        port = _port(listener)

        def client():
            try:  # the blocked handler never answers: a timeout is expected
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            except httpx.HTTPError:
                pass

        t = threading.Thread(target=client, daemon=True)
        t.start()
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 5)
        start = time.monotonic()
        with pytest.warns(RuntimeWarning, match="shutdown_timeout"):
            await am.aclose()
        elapsed = time.monotonic() - start
        release.set()
        t.join(3)
        return elapsed

    assert asyncio.run(main()) < 5.0  # no hang past the timeout (the handler: 10 s)


# Every method that needs the manager, called as 0.2.x programs call them.
_NEEDS_MANAGER = {
    "listen": lambda am: am.listen("http://127.0.0.1:0"),
    "connect": lambda am: am.connect("tcp://127.0.0.1:1"),
    "ws_connect": lambda am: am.ws_connect("ws://127.0.0.1:1"),
    "mqtt_connect": lambda am: am.mqtt_connect("mqtt://127.0.0.1:1", client_id="x"),
    "mqtt_listen": lambda am: am.mqtt_listen("mqtt://127.0.0.1:0"),
    "sntp_connect": lambda am: am.sntp_connect("udp://127.0.0.1:1"),
    "wakeup": lambda am: am.wakeup(1, b"x"),
    "timer_add": lambda am: am.timer_add(10, lambda: None),
    "schedule": lambda am: am.schedule(lambda: None),
    "manager": lambda am: am.manager,
}


@pytest.mark.parametrize("call", list(_NEEDS_MANAGER.values()), ids=list(_NEEDS_MANAGER))
def test_not_started_errors(call):
    # cymongoose 0.2.5's exception and wording, before start and after close alike.
    am = AsyncManager()
    with pytest.raises(RuntimeError, match="^AsyncManager is not started$"):
        call(am)
    assert am.running is False

    async def main():
        async with am:
            pass

    asyncio.run(main())
    with pytest.raises(RuntimeError, match="^AsyncManager is not started$"):
        call(am)
    with pytest.raises(ValueError, match="poll_interval"):
        AsyncManager(poll_interval=-1)


def test_start_twice_fails(mode):
    async def main():
        async with AsyncManager(mode=mode) as am:
            with pytest.raises(RuntimeError, match="already started"):
                await am.start()

    asyncio.run(main())


def test_enable_wakeup_keyword_of_the_seed_is_accepted():
    AsyncManager(enable_wakeup=True)
    with pytest.raises(ValueError, match="enable_wakeup"):
        AsyncManager(enable_wakeup=False)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_top_level_names_resolve_lazily_without_importing_aio_first():
    # cymongoose 0.2.x programs: `cymongoose.aio` and `cymongoose.AsyncManager` work
    # after `import cymongoose` alone, and `from cymongoose import *` brings AsyncManager.
    out = _python(
        "import sys, cymongoose\n"
        "assert 'cymongoose.aio' not in sys.modules\n"
        "assert 'AsyncManager' in cymongoose.__all__\n"
        "assert cymongoose.aio.AsyncManager is cymongoose.AsyncManager\n"
        "ns = {}\n"
        "exec('from cymongoose import *', ns)\n"
        "assert ns['AsyncManager'] is cymongoose.AsyncManager\n"
        "assert 'AsyncManager' in dir(cymongoose)\n"
        "print('ok')\n"
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
