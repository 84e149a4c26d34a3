"""``--reload`` on both command lines: edits picked up, broken apps survived, what is watched.

The app is written into the test's directory, the server runs there with ``--reload``
(watching the current directory unless ``--reload-dir`` says otherwise), and the tests
edit files and read the answers and the log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from cli_process import children, free_port, server_cli_fixture, write_app  # noqa: F401

pytest.importorskip("watchfiles")

SERVERS = ["asgi", "wsgi"]
# Promised to users: an edit is served within this long (the reload itself takes
# ~0.3 s: the change is seen within ~0.1 s, a fresh interpreter starts the app).
RELOAD_S = 2.0
# A change that is watched shows in the log within ~0.1 s; waiting this long for one
# that must not be is ample.
QUIET_S = 1.5


def reloaded(served, name: str) -> list:
    return served.find(rf"WatchFiles detected changes in .*'{name}'")


@pytest.mark.parametrize("server", SERVERS)
def test_reload_serves_the_edited_app(server_cli, tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    served = server_cli(server, "app:app", "--reload", cwd=tmp_path)
    first = served.wait_body("v1", timeout_s=60)
    before = os.stat(tmp_path / "app.py")
    write_app(tmp_path / "app.py", server, "v2")
    edited = time.monotonic()
    # The same size and mtime, as an edit within the same second: a .pyc cached from v1
    # would still be taken for it.
    os.utime(tmp_path / "app.py", ns=(before.st_atime_ns, before.st_mtime_ns))
    second = served.wait_body("v2", timeout_s=RELOAD_S)
    assert time.monotonic() - edited < RELOAD_S
    assert first.split()[1] != second.split()[1]  # a fresh process
    served.wait_log(r"WatchFiles detected changes in 'app\.py'\. Reloading\.\.\.")
    assert served.stop() == 0
    assert "Stopping reloader process" in served.log


@pytest.mark.parametrize("server", SERVERS)
def test_reload_survives_a_syntax_error(server_cli, tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    served = server_cli(server, "app:app", "--reload", cwd=tmp_path)
    served.wait_body("v1", timeout_s=60)
    (tmp_path / "app.py").write_text("BODY = 'v2\n")  # unterminated string
    served.wait_log(r"Server process \[\d+\] exited \(exit status 1\); waiting for file "
                    r"changes")
    assert "SyntaxError" in served.log and "app.py" in served.log  # the traceback
    assert served.proc.poll() is None  # the reloader goes on
    write_app(tmp_path / "app.py", server, "v3")
    served.wait_body("v3", timeout_s=30)
    assert served.stop() == 0


@pytest.mark.parametrize("server", SERVERS)
def test_reload_include_and_exclude_patterns(server_cli, tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    (tmp_path / ".hidden").mkdir()
    served = server_cli(server, "app:app", "--reload", "--reload-include", "*.txt",
                        "--reload-exclude", "skip_*.py", cwd=tmp_path)
    served.wait_body("v1", timeout_s=60)
    (tmp_path / "skip_me.py").write_text("x = 1\n")  # --reload-exclude
    (tmp_path / ".hidden" / "mod.py").write_text("x = 1\n")  # default: hidden directories
    (tmp_path / "data.json").write_text("{}\n")  # not included
    time.sleep(QUIET_S)
    (tmp_path / "notes.txt").write_text("hello\n")  # --reload-include
    served.wait_log(r"WatchFiles detected changes in 'notes\.txt'\. Reloading")
    served.wait_body("v1", timeout_s=30)
    lines = served.find("detected changes")
    assert len(lines) == 1, served.log  # nothing for the excluded files, before or with it


@pytest.mark.parametrize("server", SERVERS)
def test_reload_dir_limits_what_is_watched(server_cli, tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    (tmp_path / "watched").mkdir()
    served = server_cli(server, "app:app", "--reload", "--reload-dir", "watched",
                        cwd=tmp_path)
    served.wait_body("v1", timeout_s=60)
    assert str(tmp_path / "watched") in served.log  # "Will watch ... directories"
    write_app(tmp_path / "app.py", server, "v2")  # outside the watched directory
    time.sleep(QUIET_S)
    assert not served.find("detected changes")
    (tmp_path / "watched" / "helper.py").write_text("x = 1\n")
    served.wait_log(r"detected changes in 'watched/helper\.py'")
    served.wait_body("v2", timeout_s=30)  # the restart imported the edited app too


@pytest.mark.parametrize("server", SERVERS)
def test_reload_with_workers_warns_and_runs_one_process(server_cli, tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    served = server_cli(server, "app:app", "--reload", "--workers", "3", cwd=tmp_path)
    served.wait_body("v1", timeout_s=60)
    assert "--workers 3 is ignored with --reload" in served.log
    assert len(served.find(r"Started server process")) == 1
    assert not served.find(r"Started worker process")


@pytest.mark.parametrize("server", SERVERS)
def test_reload_without_watchfiles_says_how_to_install_it(tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    # watchfiles made unimportable in this process only.
    code = ("import sys; sys.modules['watchfiles'] = None; "
            f"from cymongoose.{server}.main import main; sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", code, "app:app", "--reload",
                           "--port", str(free_port())],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert (f"cymongoose-{server}: error: --reload needs the watchfiles package: "
            f"pip install 'cymongoose-{server}[reload]'") in proc.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_reload_dir_that_does_not_exist_exits_2(tmp_path, server):
    proc = subprocess.run([sys.executable, "-m", f"cymongoose.{server}", "app:app",
                           "--reload", "--reload-dir", "nope"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--reload-dir 'nope' is not a directory" in proc.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_reload_stops_on_sigint_with_its_child(server_cli, tmp_path, server):
    write_app(tmp_path / "app.py", server, "v1")
    served = server_cli(server, "app:app", "--reload", cwd=tmp_path)
    pid = int(served.wait_body("v1", timeout_s=60).split()[1])
    assert children(served.proc.pid) == {pid}
    assert served.stop(signal.SIGINT) == 0  # Ctrl-C
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
