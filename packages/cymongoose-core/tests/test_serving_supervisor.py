"""`cymongoose.serving.supervisor.Supervisor`: one socket, N processes, restart, signals.

The supervisor runs in a subprocess (it installs signal handlers and blocks); its server
processes are tiny plain-socket HTTP/1.0 servers, so this tests the process management
alone.
"""

import errno
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request

import pytest

SERVER_PROCESS = textwrap.dedent(
    """
    import os, socket, sys
    from cymongoose.serving.supervisor import MSG_READY
    if os.environ.get("WORKER_FAILS"):
        sys.exit(int(os.environ["WORKER_FAILS"]))
    if os.path.exists(os.environ.get("FAIL_IF_EXISTS", "/nonexistent")):
        sys.exit(1)
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(True)
    # argv: fd --supervisor-pipe N. A reload waits for MSG_READY there.
    assert sys.argv[2] == "--supervisor-pipe", sys.argv
    os.write(int(sys.argv[3]), MSG_READY)
    while True:
        conn, _ = sock.accept()
        request = conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\n" + str(os.getpid()).encode())
        conn.close()
        if b"GET /die " in request:
            os._exit(9)
    """
)

SUPERVISOR = textwrap.dedent(
    """
    import sys
    from cymongoose.serving.config import ServerConfig
    from cymongoose.serving.logconfig import configure_logging
    from cymongoose.serving.supervisor import Supervisor
    configure_logging("debug")  # "Started worker process [pid]" is a debug line
    config = ServerConfig(port=0, workers=int(sys.argv[1]), graceful_timeout_s=5)
    server_process = sys.argv[2]
    sys.exit(Supervisor(config, lambda fd: [sys.executable, "-c", server_process,
                                            str(fd)]).run())
    """
)


class Running:
    def __init__(self, workers, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, str(workers), SERVER_PROCESS],
            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern):
        regex = re.compile(pattern)
        while True:
            line = self.lines.get(timeout=30)
            self.log.append(line)
            match = regex.search(line)
            if match:
                return match

    def get(self, path="/"):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return int(r.read())

    def start(self):
        self.port = int(self.wait_for(r"running on http://127\.0\.0\.1:(\d+)").group(1))
        return self

    def worker_pids(self, count):
        return {int(self.wait_for(r"Started worker process \[(\d+)\]").group(1))
                for _ in range(count)}


@pytest.fixture
def running():
    started = []

    def start(workers, env=None):
        run = Running(workers, env)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_workers_serve_one_socket_and_sigterm_stops_all(running):
    run = running(2).start()
    pids = run.worker_pids(2)
    assert len(pids) == 2 and run.proc.pid not in pids
    answered = {run.get() for _ in range(20)}
    assert answered <= pids and answered
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0
    assert all(gone(pid) for pid in pids)


def test_sigint_stops_all(running):
    run = running(2).start()
    pids = run.worker_pids(2)
    run.get()
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=30) == 0
    assert all(gone(pid) for pid in pids)


def test_a_worker_that_dies_is_replaced(running):
    run = running(1).start()
    (first,) = run.worker_pids(1)
    assert run.get("/die") == first
    run.wait_for(rf"worker \[{first}\] died \(exit status 9\); restarting")
    (second,) = run.worker_pids(1)
    assert second != first
    assert run.get() == second
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0


def test_worker_that_cannot_start_stops_the_parent(running):
    run = running(2, env={"WORKER_FAILS": "2"}).start()
    assert run.proc.wait(timeout=30) == 1
    run.wait_for(r"could not start \(exit status 2\)")


def test_crash_loop_gives_up(running):
    run = running(1, env={"WORKER_FAILS": "7"}).start()
    assert run.proc.wait(timeout=60) == 1
    run.wait_for(r"workers keep dying")


def test_port_in_use_raises_before_any_worker_starts():
    from cymongoose.serving.config import ServerConfig
    from cymongoose.serving.listen import ListenError
    from cymongoose.serving.supervisor import Supervisor

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    started = []
    try:
        config = ServerConfig(port=holder.getsockname()[1], workers=2)
        with pytest.raises(ListenError) as info:
            Supervisor(config, lambda fd: started.append(fd) or ["true"]).run()
    finally:
        holder.close()
    assert info.value.errno == errno.EADDRINUSE and not started


# -- SIGHUP, SIGTTIN, SIGTTOU --------------------------------------------------------------


def test_sighup_starts_new_processes_then_stops_the_old_ones(running):
    run = running(2).start()
    old = run.worker_pids(2)
    run.proc.send_signal(signal.SIGHUP)
    run.wait_for(r"Received SIGHUP: reloading: starting 2 new worker process\(es\)")
    match = run.wait_for(r"Reload: new worker processes \[(\d+), (\d+)\] listening")
    new = {int(pid) for pid in match.groups()}
    assert not new & old
    for _ in old:
        pid = int(run.wait_for(r"Worker process \[(\d+)\] stopped").group(1))
        assert pid in old and gone(pid)
    assert {run.get() for _ in range(10)} <= new
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0
    assert all(gone(pid) for pid in new)


def test_sighup_keeps_the_old_processes_when_a_new_one_fails(running, tmp_path):
    flag = tmp_path / "fail"
    run = running(2, env={"FAIL_IF_EXISTS": str(flag)}).start()
    old = run.worker_pids(2)
    answered = set()
    while answered != old:  # both are past their start (the flag would stop them)
        answered.add(run.get())
    flag.touch()
    run.proc.send_signal(signal.SIGHUP)
    run.wait_for(r"Reload failed: new worker process \[\d+\] exited \(exit status 1\) "
                 r"before it listened; the old worker processes go on serving")
    assert {run.get() for _ in range(10)} <= old
    flag.unlink()
    run.proc.send_signal(signal.SIGHUP)  # works again once the new ones can start
    run.wait_for(r"Reload: new worker processes")
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0


def test_sigttin_adds_and_sigttou_removes_a_process_down_to_one(running):
    run = running(1).start()
    (first,) = run.worker_pids(1)
    run.proc.send_signal(signal.SIGTTIN)
    run.wait_for(r"Received SIGTTIN: adding a worker process \(now 2\)")
    (second,) = run.worker_pids(1)
    run.proc.send_signal(signal.SIGTTOU)
    removed = run.wait_for(r"Received SIGTTOU: removing worker process \[(\d+)\] \(now 1\)")
    assert int(removed.group(1)) == first  # the oldest
    run.wait_for(rf"Worker process \[{first}\] stopped")
    assert gone(first) and run.get() == second
    run.proc.send_signal(signal.SIGTTOU)
    run.wait_for(r"Received SIGTTOU: one worker process left; keeping it")
    assert run.get() == second
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0
