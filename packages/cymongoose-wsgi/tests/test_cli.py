from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap

import httpx
import pytest

from cymongoose.wsgi.main import import_app


def test_import_app_errors():
    with pytest.raises(ValueError, match="module:attribute"):
        import_app("no_colon")
    with pytest.raises(ValueError, match="'missing' not found"):
        import_app("json:missing")
    assert import_app("json:dumps.__name__") == "dumps"


def test_cli_serves_and_stops_on_sigint(tmp_path):
    (tmp_path / "cliapp.py").write_text(
        textwrap.dedent(
            """
            def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"from the cli"]
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cymongoose.wsgi", "cliapp:app", "--port", "0", "--threads", "2"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []  # the start-up lines, up to the one with the address
        while not (match := re.search(r"running on http://127\.0\.0\.1:(\d+)",
                                      lines[-1] if lines else "")):
            lines.append(proc.stderr.readline())
            assert lines[-1] and len(lines) < 20, lines
        r = httpx.get(f"http://127.0.0.1:{match.group(1)}/")
        assert r.text == "from the cli"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
