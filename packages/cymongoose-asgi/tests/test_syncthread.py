"""cymongoose.asgi.syncthread: the executor for asgiref's thread-sensitive calls, and the
MQTT server running an app's ``sync_to_async`` calls on it (against mosquitto)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")
if not hasattr(os, "eventfd"):
    pytest.skip("SyncThread needs os.eventfd (Linux)", allow_module_level=True)

from asgiref.sync import SyncToAsync, sync_to_async  # noqa: E402
from cymongoose.asgi.syncthread import SyncThread  # noqa: E402
from mqttkit import Client, Running  # noqa: E402


def test_calls_run_in_order_on_one_thread_and_errors_reach_the_caller():
    ex = SyncThread()
    try:
        seen: list = []
        futures = [ex.submit(lambda i=i: seen.append((i, threading.current_thread().name)) or i)
                   for i in range(50)]
        assert [f.result(10) for f in futures] == list(range(50))
        assert seen == [(i, "cymongoose-sync") for i in range(50)]
        with pytest.raises(KeyError, match="missing"):
            ex.submit({}.__getitem__, "missing").result(10)
        assert ex.submit(lambda x, *, y: x + y, 1, y=2).result(10) == 3
    finally:
        ex.shutdown()


def test_shutdown_runs_what_was_submitted_then_refuses_more():
    ex = SyncThread()
    gate = threading.Event()
    first = ex.submit(gate.wait, 10)
    second = ex.submit(lambda: "ran")
    gate.set()
    ex.shutdown(wait=True)
    assert first.result(0) is True and second.result(0) == "ran"
    assert not ex._thread.is_alive()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(print)


def test_submit_and_shutdown_racing_the_worker_never_fail():
    # The worker ends (and closes its eventfd) as soon as it reaches shutdown's marker,
    # possibly while shutdown still writes to the descriptor (the GIL is released there).
    for n in range(200):
        ex = SyncThread()
        gate = threading.Event()
        futures = [ex.submit(gate.wait, 10), ex.submit(int, n)]
        gate.set()
        ex.shutdown(wait=bool(n % 2))
        assert [f.result(10) for f in futures] == [True, n]


def test_shutdown_cancel_futures_cancels_the_queued_calls():
    ex = SyncThread()
    started, gate = threading.Event(), threading.Event()
    running = ex.submit(lambda: started.set() or gate.wait(10))
    assert started.wait(10)
    queued = ex.submit(lambda: "never")
    ex.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(10) is True
    assert queued.cancelled()


# A thread-sensitive call, both threads on one CPU: asgiref's own executor thread blocks
# three times per call (work, then the GIL twice), SyncThread's once.
_SWITCHES = textwrap.dedent("""
    import asyncio, os, sys, threading
    from asgiref.sync import SyncToAsync, sync_to_async
    from cymongoose.asgi.syncthread import SyncThread
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if sys.argv[1] == "ours":
        SyncToAsync.single_thread_executor = SyncThread()

    def voluntary(tid):
        with open(f"/proc/self/task/{tid}/status") as f:
            return int(next(l for l in f if l.startswith("voluntary")).split()[1])

    async def main():
        tid = await sync_to_async(threading.get_native_id)()
        for _ in range(200):
            await sync_to_async(int)()
        before = voluntary(tid)
        for _ in range(3000):
            await sync_to_async(int)()
        print((voluntary(tid) - before) / 3000)
    asyncio.run(main())
""")


def test_a_thread_sensitive_call_blocks_its_thread_once_on_one_cpu():
    out = subprocess.run([sys.executable, "-c", _SWITCHES, "ours"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    per_call = float(out.stdout)
    # 1 when the woken thread finds the GIL free; asgiref's executor: 3.
    assert per_call < 1.6, f"the sync thread blocked {per_call:.2f} times per call"


async def _thread_app(scope, receive, send):
    """Answers each message on in/+/x with the name of the thread that its
    ``sync_to_async`` call ran on."""
    while True:
        event = await receive()
        if event["type"] == "mqtt.connect":
            for topic in ("in/+/x", "ready"):
                await send({"type": "mqtt.sub", "mqtt": {"topic": topic, "qos": 1}})
        elif event["type"] == "mqtt.msg":
            name = await sync_to_async(lambda: threading.current_thread().name)()
            await send({"type": "mqtt.pub", "mqtt": {
                "topic": "out/" + event["mqtt"]["topic"], "payload": name.encode(),
                "qos": 1, "retain": False}})
        elif event["type"] == "mqtt.disconnect":
            return


@pytest.mark.parametrize("sync_thread", [True, False])
def test_mqtt_app_sync_calls_run_on_the_servers_thread_while_it_runs(broker, sync_thread):
    before = SyncToAsync.single_thread_executor
    server = Running(_thread_app, broker, sync_thread=sync_thread)
    client = Client(broker)
    try:
        client.subscribed()
        for _ in range(3):
            client.conn.mqtt_pub("in/a/x", b"?", qos=1)
        client.wait_for(lambda: len(client.received) == 3, "three answers")
        names = {payload.decode() for _topic, payload in client.received}
        if sync_thread:
            assert names == {"cymongoose-sync"}
        else:
            assert len(names) == 1 and "cymongoose-sync" not in names
    finally:
        server.stop()
        client.close()
    assert SyncToAsync.single_thread_executor is before  # asgiref's own, back after stop
