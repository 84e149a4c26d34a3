"""AsyncManager (threaded mode) over real sockets with an httpx client."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from cymongoose import MG_EV_HTTP_MSG, MG_EV_WAKEUP
from cymongoose.aio import AsyncManager

pytestmark = pytest.mark.timeout(60)


def _port(conn) -> int:
    return conn.local_addr[1]


def hello(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, b"Hello from async!")


def test_listen_and_serve():
    async def main():
        async with AsyncManager(hello) as am:
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


def test_per_listener_handler_and_poll_thread():
    threads = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            threads.append(threading.current_thread().name)
            conn.reply(201, data.uri.encode())

    async def main():
        async with AsyncManager() as am:
            listener = am.listen("http://127.0.0.1:0", handler)
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{_port(listener)}/abc")
        return r

    r = asyncio.run(main())
    assert (r.status_code, r.text) == (201, "/abc")
    assert threads == ["cymongoose-poll"]


def test_schedule_coroutine_from_handler():
    results = []

    async def record(uri: str):
        await asyncio.sleep(0)
        results.append((uri, threading.current_thread() is threading.main_thread()))

    am = AsyncManager()

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
            for _ in range(100):
                if len(results) == 2:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert ("/job", True) in results and "callback" in results


def test_schedule_rejects_other_objects():
    async def main():
        async with AsyncManager() as am:
            with pytest.raises(TypeError, match="coroutine or a callable"):
                am.schedule(42)

    asyncio.run(main())


def test_timer_one_shot_and_repeat():
    async def main():
        fired = []
        # Timers fire between polls: their resolution is poll_interval.
        async with AsyncManager(poll_interval=10) as am:
            am.timer_add(20, lambda: fired.append("once"))
            timer = am.timer_add(10, lambda: fired.append("tick"), repeat=True)
            await asyncio.sleep(0.3)
            timer.cancel()
            ticks = fired.count("tick")
            await asyncio.sleep(0.1)
            assert fired.count("tick") <= ticks + 1
        assert fired.count("once") == 1
        assert ticks >= 3

    asyncio.run(main())


def test_wakeup_delivers_payload():
    got = []
    done = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            got.append(data)
            done.set()

    async def main():
        async with AsyncManager(handler) as am:
            listener = am.listen("http://127.0.0.1:0")
            big = bytes(range(256)) * 400  # larger than the wakeup pipe
            assert am.wakeup(listener.id, big)
            await asyncio.get_running_loop().run_in_executor(None, done.wait, 5)
            return big

    big = asyncio.run(main())
    assert got == [big]


def test_call_in_poll_thread_is_ordered_and_batched():
    async def main():
        seen = []
        async with AsyncManager(poll_interval=200) as am:
            start = time.monotonic()
            for i in range(100):
                am.call_in_poll_thread(
                    lambda i=i: seen.append((i, threading.current_thread().name))
                )
            for _ in range(100):
                if len(seen) == 100:
                    break
                await asyncio.sleep(0.005)
            elapsed = time.monotonic() - start
        assert [i for i, _ in seen] == list(range(100))
        assert {name for _, name in seen} == {"cymongoose-poll"}
        assert elapsed < 0.15  # the wakeup interrupted a 200 ms poll

    asyncio.run(main())


def test_listen_interrupts_long_poll():
    async def main():
        async with AsyncManager(hello, poll_interval=200) as am:
            await asyncio.sleep(0.05)  # the poll thread is now inside poll(200)
            start = time.monotonic()
            am.listen("http://127.0.0.1:0")
            return time.monotonic() - start

    assert asyncio.run(main()) < 0.15


def test_handler_exception_goes_to_error_handler():
    errors = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/boom":
                raise ValueError("boom")
            conn.reply(200, b"ok")

    async def main():
        async with AsyncManager(handler, error_handler=errors.append) as am:
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


def test_shutdown_closes_manager_and_refuses_after():
    async def main():
        am = AsyncManager(hello)
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


def test_shutdown_timeout_abandons_blocked_thread():
    release = threading.Event()
    entered = threading.Event()

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            entered.set()
            release.wait(10)
            conn.reply(200, b"late")

    async def main():
        am = AsyncManager(handler, shutdown_timeout=0.2)
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
        with pytest.warns(RuntimeWarning, match="shutdown_timeout"):
            await am.aclose()
        release.set()
        t.join(3)

    asyncio.run(main())


def test_not_started_errors():
    am = AsyncManager()
    with pytest.raises(RuntimeError, match="not running"):
        am.listen("http://127.0.0.1:0")
    with pytest.raises(ValueError, match="poll_interval"):
        AsyncManager(poll_interval=-1)
