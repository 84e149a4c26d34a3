"""MQTT round-trip load through a broker: publish on ``bench/req``, wait for the server's
consumer to republish each message on ``bench/reply`` (QoS 1 both ways), match replies to
requests by a sequence number in the payload. The client is cymongoose-core's MQTT client.

    python mqtt_client.py mqtt://127.0.0.1:PORT --window 64 --duration 3   # flood
    python mqtt_client.py mqtt://127.0.0.1:PORT --rate 1000 --duration 3   # fixed rate
    python mqtt_client.py mqtt://127.0.0.1:PORT --check     # replies come back (exit 1 if not)

Flood keeps ``--window`` messages in flight (a reply sends the next one); fixed rate sends
``--rate`` messages per second whatever comes back. Prints one JSON line: msgs_per_s
(replies per second during the measurement), p50_us/p99_us (round trip), sent, received,
lost (never replied to), errors (replies with an unknown or repeated sequence number).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from cymongoose import MG_EV_MQTT_MSG, MG_EV_MQTT_OPEN, Manager

PAD = b"." * 24  # 32-byte payloads: 8 digits of sequence number + padding


class Load:
    def __init__(self, url: str) -> None:
        self.sent: dict[int, float] = {}  # seq -> send time (perf_counter), until replied
        self.rtts: list[float] = []
        self.received = self.errors = self.seq = self.probes = 0
        self.counting = False  # replies are counted for msgs_per_s
        self.counted_from = 1 << 62  # round trips of messages after this seq are measured
        self.open = False
        self.mgr = Manager(self._handler)
        self.conn = self.mgr.mqtt_connect(url, client_id=f"bench-load-{time.time_ns()}")
        self._until(lambda: self.open, 10, "CONNACK")
        self.conn.mqtt_sub("bench/reply", qos=1)

    def _handler(self, conn, ev, data) -> None:
        if ev == MG_EV_MQTT_OPEN:
            self.open = data == 0
        elif ev == MG_EV_MQTT_MSG and data.topic == "bench/reply":
            now = time.perf_counter()
            seq = 0
            try:
                seq = int(data.data[:8])
                start = self.sent.pop(seq)
            except (KeyError, ValueError):  # not ours, or a second reply (or a late probe's)
                self.errors += 0 if 0 < seq <= self.probes else 1
                return
            if self.counting:
                self.received += 1
            if seq > self.counted_from:
                self.rtts.append(now - start)
            self.on_reply()

    def on_reply(self) -> None:
        pass

    def send(self) -> None:
        self.seq += 1
        self.sent[self.seq] = time.perf_counter()
        self.conn.mqtt_pub("bench/req", b"%08d" % (self.seq % 10**8) + PAD, qos=1)

    def _until(self, cond, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit(f"mqtt_client: no {what} within {seconds} s")
            self.mgr.poll(1)

    def check(self, seconds: float = 20.0) -> None:
        """Until a reply comes back: the consumer subscribed and answers."""
        got = []
        self.on_reply = lambda: got.append(1)  # type: ignore[method-assign]
        deadline = time.monotonic() + seconds
        while not got:
            if time.monotonic() > deadline:
                raise SystemExit(f"mqtt_client: no reply on bench/reply within {seconds} s")
            self.send()
            for _ in range(50):
                self.mgr.poll(2)
        # Probes sent before the consumer subscribed never get a reply; late replies to the
        # others are dropped (they must not widen the flood's window nor count as errors).
        self.probes, self.on_reply = self.seq, lambda: None  # type: ignore[method-assign]
        self.sent.clear()

    def flood(self, window: int, warmup: float, duration: float) -> float:
        self.on_reply = self.send  # type: ignore[method-assign]
        for _ in range(window):
            self.send()
        return self._measure(warmup, duration, lambda: None)

    def fixed_rate(self, rate: float, warmup: float, duration: float) -> float:
        start = time.perf_counter()
        n = 0

        def tick() -> None:
            nonlocal n
            due = int((time.perf_counter() - start) * rate)
            while n < due:
                n += 1
                self.send()

        return self._measure(warmup, duration, tick)

    def _measure(self, warmup: float, duration: float, tick) -> float:
        end_warmup = time.perf_counter() + warmup
        while time.perf_counter() < end_warmup:
            tick()
            self.mgr.poll(1)
        self.counted_from, self.counting = self.seq, True
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration:
            tick()
            self.mgr.poll(1)
        elapsed = time.perf_counter() - t0
        self.counting = False
        self.on_reply = lambda: None  # type: ignore[method-assign]
        self.measured = self.seq - self.counted_from
        # Late replies to measured messages: wait (2 s at most) so they are not "lost".
        drain = time.perf_counter() + 2
        while self.lost() and time.perf_counter() < drain:
            self.mgr.poll(5)
        return self.received / elapsed

    def lost(self) -> int:
        return sum(seq > self.counted_from for seq in self.sent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rate", type=float, help="messages per second (default: flood)")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    load = Load(args.url)
    load.check()
    if args.check:
        return 0
    if args.rate:
        per_s = load.fixed_rate(args.rate, args.warmup, args.duration)
    else:
        per_s = load.flood(args.window, args.warmup, args.duration)
    rtts = sorted(load.rtts)
    p = (lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] * 1e6) if rtts else (lambda q: 0)
    print(json.dumps({"msgs_per_s": per_s, "p50_us": p(0.5), "p99_us": p(0.99),
                      "sent": load.measured, "received": len(rtts), "lost": load.lost(),
                      "errors": load.errors, "mean_us": statistics.fmean(rtts) * 1e6
                      if rtts else 0}))
    load.mgr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
