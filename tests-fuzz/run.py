"""Run every fuzz target for a fixed total time; exit 1 if any of them found a failure.

    python tests-fuzz/run.py                    # 600 s in all (nox -s fuzz)
    python tests-fuzz/run.py --seconds 60 --targets core_http

Targets (one atheris/libFuzzer process each, one after the other; share of the time):
``core_http`` (40%: the core's HTTP server protocol, ``fuzz_core_http.py``), ``asgi`` and
``wsgi`` (30% each: the adapters' request and response translation). Each starts from
the checked-in seeds (``corpus/core_http`` or ``corpus/adapters``, never written to) and
a work corpus under ``--workdir`` (default ``.nox/fuzz``) that grows from run to run. A
failing input is saved as ``<workdir>/<target>/crash-*`` (or ``timeout-*``: one input took
over 60 s); re-run it with ``python tests-fuzz/fuzz_<target>.py <that file>``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {  # name: (script, seed corpus, share of the time)
    "core_http": ("fuzz_core_http.py", "core_http", 0.4),
    "asgi": ("fuzz_asgi.py", "adapters", 0.3),
    "wsgi": ("fuzz_wsgi.py", "adapters", 0.3),
}


def run_target(name: str, seconds: int, workdir: Path) -> tuple[bool, str]:
    """Fuzz one target for ``seconds``; return (passed, summary)."""
    script, seeds, _share = TARGETS[name]
    out = workdir / name
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    log = out / "fuzz.log"
    command = [sys.executable, str(HERE / script), str(corpus), str(HERE / "corpus" / seeds),
               f"-dict={HERE / 'http.dict'}", f"-max_total_time={seconds}", "-timeout=60",
               "-rss_limit_mb=4096", "-print_final_stats=1", f"-artifact_prefix={out}/"]
    started = time.monotonic()
    with open(log, "wb") as f:
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, cwd=HERE)
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    runs = next((ln for ln in reversed(text.splitlines()) if ln.startswith("Done ")), "")
    cov = next((ln for ln in reversed(text.splitlines()) if " cov: " in ln), "")
    summary = f"{name}: {runs or 'no run count'} ({elapsed:.0f} s); last: {cov.strip()[:120]}"
    if code != 0:
        return False, f"{summary}\n  FAILED (exit {code}), log {log}:\n{text[-3000:]}"
    return True, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600,
                        help="total fuzzing time in seconds, shared by the targets "
                             "(default 600)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, from: {', '.join(TARGETS)} (default all)")
    parser.add_argument("--workdir", type=Path, default=HERE.parent / ".nox" / "fuzz",
                        help="work corpora, logs and failing inputs (default .nox/fuzz/)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown or not names:
        parser.error(f"--targets: unknown {unknown}; choose from {', '.join(TARGETS)}")
    if args.seconds < len(names):
        parser.error(f"--seconds must be at least {len(names)}, got {args.seconds}")
    total_share = sum(TARGETS[n][2] for n in names)
    results = []
    for name in names:
        seconds = max(1, round(args.seconds * TARGETS[name][2] / total_share))
        print(f"fuzzing {name} for {seconds} s ...", flush=True)
        results.append(run_target(name, seconds, args.workdir))
        print(results[-1][1], flush=True)
    failed = [summary for ok, summary in results if not ok]
    print(f"{len(results) - len(failed)} of {len(results)} targets ran without a failure")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
