"""The ``mqtt`` workload of run.py (issue 19): ASGI over MQTT through mosquitto.

The same consumer (apps/mqtt_echo.py: republish each message on ``bench/req`` to
``bench/reply``, QoS 1 both ways) runs on cymongoose-asgi's MQTT server and on mqttasgi,
each pinned to the server CPU; mosquitto and the load (mqtt_client.py) share the load CPU.
Two consumers: ``channels`` (mqttasgi's ``MqttConsumer``, as real projects write them) and
``raw`` (the same echo as a plain ASGI app: the servers' own cost, without Channels).
Per server and consumer: messages/s with ``WINDOW`` messages in flight, and the round-trip
p50/p99 at a fixed ``RATE`` messages/s.

    python benchmarks/run.py --workloads mqtt --quick
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
SERVER_CPU, LOAD_CPU = "0", "1"  # as run.py
SERVERS = ("cymongoose-asgi", "mqttasgi")
CONSUMERS = {"channels": "application", "raw": "raw"}  # name -> attribute of mqtt_echo
WINDOW = 64  # messages in flight while flooding
RATE = 1000  # messages/s for the latency measurement
MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
# mosquitto's defaults would measure the broker: Nagle on its sockets holds a PUBLISH
# behind the PUBACK before it (40 ms with delayed ACKs), and 20 QoS 1 messages in flight
# per client would cap the window.
BROKER_CONF = """listener {port} 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_inflight_messages 1000
max_queued_messages 100000
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_argv(server: str, port: int, consumer: str) -> list[str]:
    spec = f"mqtt_echo:{CONSUMERS[consumer]}"
    if server == "mqttasgi":
        exe = shutil.which("mqttasgi", path=str(Path(PY).parent)) or "mqttasgi"
        return [exe, "-H", "127.0.0.1", "-p", str(port), "-i", "bench-mqttasgi", spec]
    return [PY, "-m", "cymongoose.asgi", "--mqtt", f"mqtt://127.0.0.1:{port}", "--mqtt-client-id",
            "bench-cymongoose", "--log-level", "warning", spec]


class Process:
    """A process pinned to ``cpu``, its output kept in a temporary file."""

    def __init__(self, argv: list[str], cpu: str) -> None:
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONPATH=str(HERE / "apps"))
        self.proc = subprocess.Popen(["taskset", "-c", cpu, *argv], cwd=HERE / "apps",
                                     env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-600:].strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def start_broker(tmp: Path) -> tuple[Process, int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(BROKER_CONF.format(port=port))
    broker = Process([MOSQUITTO, "-c", str(conf)], LOAD_CPU)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return broker, port
        except OSError:
            if broker.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {broker.output()}") from None
            time.sleep(0.05)


def load(port: int, *flags: str) -> dict:
    argv = ["taskset", "-c", LOAD_CPU, PY, str(HERE / "mqtt_client.py"),
            f"mqtt://127.0.0.1:{port}", *flags]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if out.returncode:
        raise RuntimeError(out.stderr.strip()[-300:] or f"mqtt_client: exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


def measure(server: str, consumer: str, port: int, duration: float, warmup: float) -> dict:
    """One server serving one consumer: flood, then fixed rate; a dict for the row."""
    proc = Process(server_argv(server, port, consumer), SERVER_CPU)
    try:
        load(port, "--check")  # the consumer subscribed and replies
        timing = ("--duration", str(duration), "--warmup", str(warmup))
        flood = load(port, "--window", str(WINDOW), *timing)
        rate = load(port, "--rate", str(RATE), *timing)
    except Exception as exc:
        raise RuntimeError(f"{exc} (server output: {proc.output()})") from None
    finally:
        proc.stop()
    return {"msgs_per_s": flood["msgs_per_s"], "flood_p50_us": flood["p50_us"],
            "p50_us": rate["p50_us"], "p99_us": rate["p99_us"],
            "lost": flood["lost"] + rate["lost"], "errors": flood["errors"] + rate["errors"]}


def cells_per_round(servers: list[str]) -> int:
    """Measurements run_round makes for ``servers`` (none without mosquitto)."""
    return len(servers) * len(CONSUMERS) if MOSQUITTO is not None else 0


def run_round(servers: list[str], duration: float, warmup: float, results: dict,
              progress=None, round_no: int = 1) -> None:
    """Every (server, consumer) once against a fresh broker; appends to ``results``
    (``(server, consumer) -> list of measurements or an error string``). ``progress``
    (progress.Progress) hears of each measurement as it starts."""
    if MOSQUITTO is None:
        print("  mqtt: mosquitto is not installed (apt-get install mosquitto): skipped",
              flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="cymongoose-mqtt-") as tmp:
        broker, port = start_broker(Path(tmp))
        try:
            for consumer in CONSUMERS:
                for server in servers:
                    cell = results.setdefault((server, consumer), [])
                    if progress is not None:
                        progress.cell(server, f"mqtt {consumer}", round_no)
                    try:
                        cell.append(measure(server, consumer, port, duration, warmup))
                    except Exception as exc:  # noqa: BLE001 - the row shows it
                        cell.append(f"{exc}"[:300])
                        print(f"  mqtt {server} {consumer}: {exc}"[:400], flush=True)
        finally:
            broker.stop()


def summarise(results: dict) -> list[dict]:
    """Median over rounds per (server, consumer); lost/errors summed."""
    rows = []
    for (server, consumer), cells in results.items():
        ok = [c for c in cells if isinstance(c, dict)]
        row: dict = {"server": server, "consumer": consumer,
                     "error": next((c for c in cells if isinstance(c, str)), "")}
        if ok:
            for key in ("msgs_per_s", "flood_p50_us", "p50_us", "p99_us"):
                row[key] = statistics.median(c[key] for c in ok)
            row["lost"] = sum(c["lost"] for c in ok)
            row["errors"] = sum(c["errors"] for c in ok)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## mqtt: ASGI over MQTT through mosquitto (issue 19)", "",
             f"Each message on `bench/req` is republished to `bench/reply` by the consumer "
             f"(QoS 1 both ways, 32-byte payloads). msgs/s: {WINDOW} messages in flight; "
             f"p50/p99: round trip at {RATE} msgs/s. `channels`: mqttasgi's `MqttConsumer` "
             "(Channels dispatches each message through `sync_to_async`); `raw`: the same "
             "echo as a plain ASGI app. Targets (issue 19): ≥ 5× mqttasgi's msgs/s, ≥ 10× "
             "lower p50.", "",
             "| consumer | server | msgs/s | p50 ms @ flood | p50 ms | p99 ms | lost/errors "
             "| msgs/s × mqttasgi | p50 ÷ mqttasgi |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "msgs_per_s" not in row:
            lines.append(f"| {row['consumer']} | {row['server']} | **ERROR** {row['error']} "
                         "| | | | | | |")
            continue
        peer = next((r for r in rows if r["server"] == "mqttasgi" and "msgs_per_s" in r
                     and r["consumer"] == row["consumer"]), None)
        ratio = speed = ""
        if peer is not None and row["server"] != "mqttasgi":
            speed = f"{row['msgs_per_s'] / peer['msgs_per_s']:.1f}×"
            ratio = f"{peer['p50_us'] / row['p50_us']:.0f}× lower"
        bad = row["lost"] or row["errors"]
        le = f"**{row['lost']}/{row['errors']} !**" if bad else "0/0"
        lines.append(f"| {row['consumer']} | {row['server']} | {row['msgs_per_s']:.0f} | "
                     f"{row['flood_p50_us'] / 1000:.2f} | {row['p50_us'] / 1000:.3f} | "
                     f"{row['p99_us'] / 1000:.2f} | {le} | {speed} | {ratio} |")
    lines.append("")
    return lines
