"""Compare the core's TLS stacks: OpenSSL (tls_openssl.c) and mongoose's built-in one.

Each interpreter given runs a bare core HTTPS server (a Python ``Manager`` handler
answering a 13-byte hello), pinned to CPU 0; the load runs on CPU 1:
- full handshakes: ``openssl s_time -new`` (one connection at a time, no session
  reuse) for ``--seconds``; reported as the server's CPU time per handshake and the
  handshakes per second of server CPU that makes;
- keep-alive: ``wrk -c50`` on the hello route for ``--seconds``.

    python benchmarks/tls_stacks.py --python openssl=/venv1/bin/python \\
        --python builtin=/venv2/bin/python

The certificates (EC P-256 and RSA 2048, from ``cryptography``) are made in a temporary
directory; the built-in stack runs only the EC one (it has no RSA).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SERVER = textwrap.dedent("""
    import sys
    from cymongoose import MG_EV_ACCEPT, MG_EV_HTTP_MSG, TLS_LIBRARY, Manager, TlsOpts
    port, cert, key = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
    opts = TlsOpts(cert=cert, key=key)

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            conn.tls_init(opts)
        elif ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"Hello, World!")

    with Manager(handler) as mgr:
        mgr.listen(f"https://127.0.0.1:{port}").io_events = False
        print(TLS_LIBRARY, flush=True)
        mgr.run(poll_ms=1000)
""")


def make_certs(tmp: Path) -> dict[str, tuple[Path, Path]]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    out = {}
    for kind, key in (("ec", ec.generate_private_key(ec.SECP256R1())),
                      ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))):
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .sign(key, hashes.SHA256()))
        cert_file, key_file = tmp / f"{kind}.crt", tmp / f"{kind}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        out[kind] = (cert_file, key_file)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(python: str, cert: Path, key: Path, seconds: int) -> dict:
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", "0", python, "-c", SERVER, str(port), str(cert),
                             str(key)], stdout=subprocess.PIPE, text=True)
    try:
        library = proc.stdout.readline().strip()
        time.sleep(0.5)
        load = ["taskset", "-c", "1"]
        before = cpu_seconds(proc.pid)
        out = subprocess.run([*load, "openssl", "s_time", "-connect", f"127.0.0.1:{port}",
                              "-new", "-time", str(seconds)], capture_output=True, text=True)
        used = cpu_seconds(proc.pid) - before
        found = re.search(r"(\d+) connections in [\d.]+s", out.stdout)
        handshakes = int(found.group(1)) if found else 0
        wrk = subprocess.run([*load, "wrk", "-t1", "-c50", f"-d{seconds}s",
                              f"https://127.0.0.1:{port}/"], capture_output=True, text=True)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout)
        return {"library": library, "handshakes": handshakes,
                "us_per_handshake": used / handshakes * 1e6 if handshakes else float("nan"),
                "keepalive_rps": float(rps.group(1)) if rps else float("nan")}
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append", required=True, metavar="NAME=PATH",
                        help="an interpreter with cymongoose-core installed (repeat)")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp))
        print("| stack | key | full handshakes: server CPU each | => per CPU-second "
              "| keep-alive hello, wrk -c50 |\n|---|---|---|---|---|")
        for spec in args.python:
            name, _, python = spec.partition("=")
            for kind, (cert, key) in certs.items():
                if name == "builtin" and kind == "rsa":
                    continue
                r = measure(python, cert, key, args.seconds)
                print(f"| {r['library']} | {kind} | {r['us_per_handshake']:.0f} us "
                      f"| {1e6 / r['us_per_handshake']:.0f} | {r['keepalive_rps']:.0f} req/s |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
