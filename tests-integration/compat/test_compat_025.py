"""cymongoose 0.2.x programs run unchanged (spec core-api.md): probe.py runs under
cymongoose 0.2.5 itself, installed from the package index into a scratch virtualenv, and
under the cymongoose installed here; results, exception types and messages are compared
case by case, and every 0.2.x signature must accept the calls it accepted.

``CYMONGOOSE_025_PYTHON=/path/to/python`` uses an interpreter that already has
cymongoose 0.2.5 instead of building the virtualenv (offline runs).

Deliberate differences, not compared (the spec, or a 0.2.5 defect, decides):
- Manager.listen()/connect()/... after close(): RuntimeError("Manager has been freed")
  (spec: calls after close raise); 0.2.5 returns a Connection that is never polled.
- reply()/reply_json()/ws_upgrade() header dicts with bytes: written as bytes (0.2.5 writes
  their repr, ``b'X-A': b'v'``), CR/LF/NUL refused with 0.2.5's wording; a header name that
  is not a token (space, colon, empty) is refused (RFC 9110 section 5.6.2).
- bytes accepted where 0.2.5 takes only str (URLs, url_encode, query_var, ...); wrong
  argument types raise TypeError in both, worded differently.
- IPv6 URLs work (0.2.5 was built without IPv6); wakeup() without enable_wakeup raises
  RuntimeError (spec; 0.2.5 returns False); invalid base64 raises ValueError (0.2.5: b"");
  HttpMessage.status() of a request is None (spec; 0.2.5: 0 inside the handler);
  Rpc.methods keeps insertion order; send()/ws_send()/poll() return a value (0.2.5: None);
  MG_EV_READ's data on raw TCP/UDP is the bytes received (spec; 0.2.5: None; both keep
  them in the receive buffer for recv_data()).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("probe.py")

# Signatures of the servers (cymongoose.asgi and .wsgi keep 0.2.5's), checked like the
# core's (test_signature_accepts_0_2_5_calls).
SERVER_SIGNATURES: list[str] = [
    "cymongoose.asgi:ASGIServer", "cymongoose.asgi:ASGIServer.start",
    "cymongoose.asgi:ASGIServer.stop", "cymongoose.asgi:serve",
    "cymongoose.wsgi:WSGIServer", "cymongoose.wsgi:WSGIServer.listen",
    "cymongoose.wsgi:WSGIServer.run", "cymongoose.wsgi:WSGIServer.close",
    "cymongoose.wsgi:serve",
]

# Instrumentation of our build (nox -s asan) stays out of the 0.2.5 interpreter.
_SANITIZER_VARS = ("LD_PRELOAD", "ASAN_OPTIONS", "PYTHONMALLOC")


def _load_probe():
    spec = importlib.util.spec_from_file_location("cymongoose_compat_probe", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


probe = _load_probe()  # case names and signature targets, for parametrize


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SANITIZER_VARS}


def _run_probe(python: str, env: dict[str, str], cwd: Path) -> dict:
    out = subprocess.run([python, str(PROBE), *SERVER_SIGNATURES], capture_output=True,
                         text=True, env=env, cwd=cwd, timeout=900)
    assert out.returncode == 0, f"probe failed under {python}:\n{out.stderr[-4000:]}"
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def python_025(tmp_path_factory) -> str:
    """An interpreter with cymongoose 0.2.5: a fresh virtualenv, wheels only."""
    given = os.environ.get("CYMONGOOSE_025_PYTHON")
    if given:
        return given
    root = tmp_path_factory.mktemp("cymongoose-0.2.5")
    env = _clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, env=env,
                   timeout=300)
    python = str(root / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check",
                          "--quiet", "--only-binary=:all:", "cymongoose==0.2.5"],
                         capture_output=True, text=True, env=env, timeout=900)
    if pip.returncode != 0:
        version = "{}.{}".format(*sys.version_info[:2])
        pytest.skip(f"cannot install cymongoose 0.2.5 for Python {version} (no wheel for "
                    f"this Python, or no package index): {pip.stderr.strip()[-500:]}")
    return python


@pytest.fixture(scope="session")
def reports(python_025, tmp_path_factory) -> dict[str, dict]:
    cwd = tmp_path_factory.mktemp("probe")
    return {"0.2.5": _run_probe(python_025, _clean_env(), cwd),
            "ours": _run_probe(sys.executable, dict(os.environ), cwd)}


@pytest.mark.parametrize("name", list(probe.CASES))
def test_case_matches_0_2_5(reports, name):
    theirs, ours = reports["0.2.5"]["cases"][name], reports["ours"]["cases"][name]
    if theirs["level"] == "exact":
        assert ours == theirs, _explain(theirs, ours)
    else:  # accepted: the call is taken, or refused with the same exception type, alike
        assert ours.get("raises") == theirs.get("raises"), _explain(theirs, ours)


def _explain(theirs: dict, ours: dict) -> str:
    return ("\n0.2.5: " + json.dumps(theirs, sort_keys=True)[:3000]
            + "\nours:  " + json.dumps(ours, sort_keys=True)[:3000])


@pytest.mark.parametrize("target", probe.SIGNATURES + SERVER_SIGNATURES)
def test_signature_accepts_0_2_5_calls(reports, target):
    theirs = reports["0.2.5"]["signatures"][target]
    ours = reports["ours"]["signatures"][target]
    if theirs is None:
        pytest.skip(f"0.2.5 gives no signature for {target}: the probe's calls cover it")
    assert ours is not None, f"{target}: no signature to compare"
    assert _incompatibilities(theirs, ours) == [], f"{target}\n0.2.5: {theirs}\nours:  {ours}"


_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


def _incompatibilities(theirs: list, ours: list) -> list[str]:
    """What a call valid for 0.2.5's signature would find missing or changed in ours:
    a parameter gone, moved, no longer positional or by keyword, a changed default; a new
    parameter without a default."""
    problems = []
    mine = {p[0]: (i, p) for i, p in enumerate(ours)}
    kinds = {p[1] for p in ours}
    for i, (name, kind, default) in enumerate(theirs):
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            if kind not in kinds:
                problems.append(f"no {kind} for *{name}")
            continue
        if name not in mine:
            problems.append(f"parameter {name!r} is missing")
            continue
        index, (_, our_kind, our_default) = mine[name]
        if kind in _POSITIONAL and (index != i or our_kind not in _POSITIONAL):
            problems.append(f"{name!r} is no longer positional parameter {i}")
        if kind == "POSITIONAL_OR_KEYWORD" and our_kind == "POSITIONAL_ONLY":
            problems.append(f"{name!r} can no longer be passed by keyword")
        # A None default may be a sentinel resolved inside (e.g. from a server config):
        # its effective value is behaviour, for a probe case to compare.
        if default != our_default and our_default != "None":
            problems.append(f"default of {name!r}: {default} became {our_default}")
    known = {p[0] for p in theirs}
    for name, kind, default in ours:
        if name not in known and kind not in ("VAR_POSITIONAL", "VAR_KEYWORD") \
                and default is None:
            problems.append(f"new parameter {name!r} has no default")
    return problems


def test_every_0_2_5_public_callable_has_its_signature_compared(reports):
    # probe.SIGNATURES is written from the spec; 0.2.5 must offer nothing it misses.
    public = {t.replace("cymongoose:AsyncManager", "cymongoose.aio:AsyncManager")
              for t in reports["0.2.5"]["public"]}
    assert sorted(public - set(probe.SIGNATURES)) == []
