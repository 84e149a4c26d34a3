"""Run every fuzz target for a fixed total time; exit 1 if any of them found a failure.

    python tests-fuzz/run.py                    # 600 s in all (nox -s fuzz)
    python tests-fuzz/run.py --seconds 60 --targets core_http

Targets (one atheris/libFuzzer process each, one after the other; share of the time):
``core_http`` (30%: the core's HTTP server protocol, ``fuzz_core_http.py``),
``http_head`` (10%: its one-pass head parser against mongoose's, ``fuzz_http_head.py``),
``asgi``, ``wsgi`` and ``wsgi_inline`` (20% each: the adapters' request and response translation;
``wsgi_inline`` runs ``fuzz_wsgi.py`` on the inline mode). Each starts from
the checked-in seeds (``corpus/core_http`` or ``corpus/adapters``, never written to) and
a work corpus under ``--workdir`` (default ``.nox/fuzz``) that grows from run to run. A
failing input is saved as ``<workdir>/<target>/crash-*`` (or ``timeout-*``: one input took
over 60 s); re-run it with ``python tests-fuzz/fuzz_<target>.py <that file>``. After a
failure the target starts again for the time left, so that one session lists every
distinct failure it can reach (it stops early when the same one recurs three times).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {  # name: (script, seed corpus, share of the time)
    "core_http": ("fuzz_core_http.py", "core_http", 0.3),
    "http_head": ("fuzz_http_head.py", "core_http", 0.1),
    "asgi": ("fuzz_asgi.py", "adapters", 0.2),
    "wsgi": ("fuzz_wsgi.py", "adapters", 0.2),
    # The same target on the inline mode (threads=0), where the core's C fast path
    # (WsgiFastPath) answers most requests.
    "wsgi_inline": ("fuzz_wsgi.py", "adapters", 0.2),
}


def _fuzz_once(name: str, seconds: int, out: Path, attempt: int) -> tuple[int, str, float]:
    """One libFuzzer run; return (exit status, its log, seconds taken)."""
    script, seeds, _share = TARGETS[name]
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    log = out / f"fuzz-{attempt}.log"
    command = [sys.executable, str(HERE / script), str(corpus), str(HERE / "corpus" / seeds),
               f"-dict={HERE / 'http.dict'}", f"-max_total_time={seconds}", "-timeout=60",
               "-rss_limit_mb=4096", "-print_final_stats=1", f"-artifact_prefix={out}/"]
    started = time.monotonic()
    env = {**os.environ, "FUZZ_WSGI_THREADS": "0" if name == "wsgi_inline" else ""}
    with open(log, "wb") as f:
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, cwd=HERE, env=env)
    return code, log.read_text(errors="replace"), time.monotonic() - started


def _failure(text: str) -> str:
    """The first line of what went wrong, from a libFuzzer log."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "Uncaught Python exception" in line and i + 1 < len(lines):
            return lines[i + 1].strip()[:300]
        if line.startswith("==") and "ERROR:" in line:
            return line.strip()[:300]
    return "unknown failure (see the log)"


def run_target(name: str, seconds: int, workdir: Path) -> tuple[bool, str]:
    """Fuzz one target for ``seconds``; return (passed, summary).

    libFuzzer stops at the first failure; the target is then started again for the time
    left (atheris has no fork mode), so one run can report several different failures.
    It gives up early when the same failure comes back at once three times.
    """
    out = workdir / name
    deadline = time.monotonic() + seconds
    failures: list[str] = []
    runs = 0
    attempt = 0
    repeats = 0
    while (left := round(deadline - time.monotonic())) >= 5:
        attempt += 1
        code, text, _elapsed = _fuzz_once(name, left, out, attempt)
        done = next((ln for ln in reversed(text.splitlines()) if ln.startswith("Done ")), "")
        execs = next((ln for ln in text.splitlines()
                      if ln.startswith("stat::number_of_executed_units:")), "")
        runs += int(done.split()[1]) if done else int(execs.split()[-1]) if execs else 0
        if code == 0:
            break
        failure = _failure(text)
        repeats = repeats + 1 if failures and failures[-1] == failure else 1
        failures.append(failure)
        if repeats >= 3:
            break
    distinct = list(dict.fromkeys(failures))
    summary = f"{name}: {runs} inputs in {seconds} s, {len(failures)} failing runs"
    if distinct:
        summary += ", failures (inputs and logs in " + str(out) + "):\n" + "\n".join(
            f"  - {f}" for f in distinct)
    return not failures, summary


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
