"""Scaling by shared subscription: two cymongoose server processes subscribed to
``$share/g/jobs`` split the topic's messages at the broker (mosquitto), each message
handled exactly once overall (docs/guides/mqtt-scaling.md)."""

from __future__ import annotations

import time

from mqtt_support import Client, ServerProcess, broker, wait_ready  # noqa: F401 (fixture)

JOBS = 200


def test_two_processes_split_a_shared_subscription(broker):  # noqa: F811
    client = Client(broker, "test-client")
    workers = []
    try:
        client.subscribe("ready/#", qos=1)
        client.subscribe("done/#", qos=1)
        for name in ("w1", "w2"):
            workers.append(ServerProcess("cymongoose", broker, "shared", f"shared-{name}",
                                         env={"MQTT_WORKER": name}))
            wait_ready(client, workers[-1], name)
        sent = [f"job-{n}".encode() for n in range(JOBS)]
        for payload in sent:
            client.publish("jobs", payload, qos=1)
        client.wait_for(lambda: len(client.received("done/")) >= JOBS, f"{JOBS} jobs done")
        time.sleep(1.0)  # a duplicate delivery would arrive in this time
        done = client.received("done/")
        assert sorted(m[1] for m in done) == sorted(sent)  # each exactly once overall
        per_worker = {name: sum(m[0] == f"done/{name}" for m in done) for name in ("w1", "w2")}
        assert all(per_worker.values()), per_worker  # the broker gave both a share
    finally:
        outputs = [w.stop() for w in workers]
        client.close()
    for out in outputs:
        assert "Traceback" not in out, out
