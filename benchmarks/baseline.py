"""The cymongoose packages of an earlier commit, for ``run.py --baseline REF``.

REF's ``packages/`` tree is exported with ``git archive`` (the repository's index and
worktrees are left alone) and installed into a virtualenv of its own, made with the
interpreter running the benchmark, together with the frameworks the benchmark apps import,
pinned to the versions installed here: the two trees then differ only in cymongoose. The
core build takes its mongoose sources from the usual cache (``$CYMONGOOSE_CACHE_DIR`` or
``~/.cache/cymongoose``), so nothing is fetched twice.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# In install order; a commit that lacks one (older history) installs the others.
PACKAGE_DIRS = ("cymongoose-core", "cymongoose-aio", "cymongoose-wsgi", "cymongoose-asgi")
APP_DEPS = ("fastapi", "flask")  # what benchmarks/apps/ import besides cymongoose


@dataclass(frozen=True)
class Baseline:
    """An installed earlier tree: ``python`` runs its servers."""

    ref: str  # as given on the command line
    commit: str  # full hash
    short: str  # abbreviated hash: the suffix of its rows' server names
    subject: str  # the commit's first line
    python: Path  # the interpreter of its virtualenv
    versions: dict[str, str]  # distribution -> version installed there


def git(*args: str) -> str:
    """Run git in the repository; return stdout. Raises CalledProcessError."""
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def describe_tree() -> str:
    """The current tree: abbreviated HEAD, plus a note when it has uncommitted changes."""
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "packages")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + uncommitted changes in packages/" if dirty else head


def resolve(ref: str) -> tuple[str, str, str]:
    """(full hash, short hash, subject) of ``ref``; ValueError naming it if git does not
    know it as a commit."""
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ValueError(f"--baseline {ref!r}: not a commit of the repository at {ROOT}"
                         ) from exc
    return commit, git("rev-parse", "--short", commit), git("log", "-1", "--format=%s", commit)


def _constraints(path: Path) -> Path:
    """Pin every distribution installed here (except cymongoose and direct URLs)."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    keep = [line for line in frozen if "==" in line and " @ " not in line
            and not line.lower().replace("_", "-").startswith("cymongoose")]
    path.write_text("\n".join(keep) + "\n")
    return path


def _run(argv: list, what: str) -> None:
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if out.returncode:
        tail = (out.stdout + out.stderr).strip()[-1500:]
        raise RuntimeError(f"baseline: {what} failed (exit {out.returncode}):\n{tail}")


def build(ref: str, tmp: Path) -> Baseline:
    """Export ``ref``'s packages into ``tmp`` and install them into a new virtualenv there.

    Raises ValueError for an unknown ref or a commit without ``packages/cymongoose-core``,
    RuntimeError (with pip's output) when the virtualenv or an install fails.
    """
    commit, short, subject = resolve(ref)
    tree, venv = tmp / f"tree-{short}", tmp / f"venv-{short}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit,
                              "packages"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    dirs = [tree / "packages" / d for d in PACKAGE_DIRS if (tree / "packages" / d).is_dir()]
    if not dirs or dirs[0].name != "cymongoose-core":
        raise ValueError(f"--baseline {ref!r}: commit {short} has no packages/cymongoose-core")
    started = time.monotonic()
    print(f"baseline {short} ({subject}): building {', '.join(d.name for d in dirs)} "
          f"into {venv}", flush=True)
    _run([sys.executable, "-m", "venv", venv], "python -m venv")
    python = venv / "bin" / "python"
    constraints = _constraints(tmp / "constraints.txt")
    env_note = os.environ.get("CYMONGOOSE_CACHE_DIR", "~/.cache/cymongoose")
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-c", constraints, *dirs, *APP_DEPS], f"pip install (mongoose cache: {env_note})")
    names = [d.name for d in dirs] + list(APP_DEPS)
    probe = ("import importlib.metadata as m, json, sys; "
             "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    versions = json.loads(subprocess.run([str(python), "-c", probe, *names],
                                         capture_output=True, text=True, check=True).stdout)
    mismatched = [n for n in APP_DEPS if versions[n] != _version_here(n)]
    if mismatched:  # the constraints should make this impossible; say so if not
        print(f"baseline {short}: framework versions differ from this environment: "
              f"{mismatched}", flush=True)
    print(f"baseline {short}: ready in {time.monotonic() - started:.0f} s", flush=True)
    return Baseline(ref, commit, short, subject, python, versions)


def _version_here(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
