"""Apply the core's own patches (``patches/*.patch``) to a copy of the verified mongoose sources.

The pristine files stay as fetched and hash-checked (fetch_mongoose.py); the build
compiles a patched copy. Each patch file starts with its reason, then a unified diff
(``diff -u``) of ``mongoose.c``/``mongoose.h`` with paths ``a/NAME`` and ``b/NAME``.
Applying is strict, like ``patch --fuzz=0``: every hunk's context and removed lines must
match the source exactly (at the stated line, or at exactly one other place). A patch
that no longer applies stops the build. Pure Python: no ``patch`` program needed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

FILES = ("mongoose.c", "mongoose.h", "LICENSE")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class MongoosePatchError(RuntimeError):
    """A patch in ``patches/`` does not apply to the pinned mongoose sources."""


def patch_files(patches_dir: Path) -> list[Path]:
    """The ``*.patch`` files of ``patches_dir`` in the order they apply (by name)."""
    if not patches_dir.is_dir():
        return []
    return sorted(patches_dir.glob("*.patch"))


def _parse(patch: Path) -> list[tuple[str, list[tuple[int, list[str], list[str]]]]]:
    """[(file name, [(old start line, old lines, new lines), ...]), ...] of a unified diff."""
    files: list[tuple[str, list]] = []
    lines = patch.read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if lines[i].startswith("--- a/") and i + 1 < len(lines) and \
                lines[i + 1].startswith("+++ b/"):
            name = lines[i + 1][len("+++ b/"):].split("\t")[0].strip()
            files.append((name, []))
            i += 2
            continue
        m = _HUNK.match(lines[i])
        if m and files:
            old_n = int(m.group(2) if m.group(2) is not None else 1)
            new_n = int(m.group(4) if m.group(4) is not None else 1)
            old: list[str] = []
            new: list[str] = []
            i += 1
            while (len(old) < old_n or len(new) < new_n) and i < len(lines):
                line = lines[i]
                if line.startswith("\\"):  # "\ No newline at end of file"
                    i += 1
                    continue
                tag, text = line[:1], line[1:]
                if tag in (" ", "-"):
                    old.append(text)
                if tag in (" ", "+"):
                    new.append(text)
                if tag not in (" ", "-", "+"):
                    raise MongoosePatchError(f"{patch.name}: malformed hunk line {line!r}")
                i += 1
            files[-1][1].append((int(m.group(1)), old, new))
            continue
        i += 1
    if not files:
        raise MongoosePatchError(f"{patch.name}: no unified diff found")
    return files


def _apply_hunks(patch: Path, name: str, source: list[str], hunks: list) -> list[str]:
    out = list(source)
    delta = 0  # lines added so far by earlier hunks
    for number, (start, old, new) in enumerate(hunks, 1):
        at = max(start - 1 + delta, 0) if old else start + delta
        if out[at:at + len(old)] != old:
            found = [k for k in range(len(out) - len(old) + 1) if out[k:k + len(old)] == old]
            if len(found) != 1:
                raise MongoosePatchError(
                    f"{patch.name} does not apply to the mongoose sources: hunk {number} "
                    f"of {name} (line {start}) {'matches nowhere' if not found else 'is ambiguous'}"
                    "; refusing to build. Update the patch for this mongoose version."
                )
            at = found[0]
        out[at:at + len(old)] = new
        delta += len(new) - len(old)
    return out


def apply_patches(pristine_dir: Path, patches_dir: Path, dest_dir: Path) -> Path:
    """Return ``dest_dir`` holding ``pristine_dir``'s files with every patch applied.

    Files in ``dest_dir`` are rewritten only when their content changes, so an
    unchanged source is not recompiled. Raises MongoosePatchError naming the patch,
    file and hunk when one does not apply; ``dest_dir`` is then left as it was.
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in FILES:
            if (pristine_dir / name).is_file():
                shutil.copyfile(pristine_dir / name, work / name)
        for patch in patch_files(patches_dir):
            for name, hunks in _parse(patch):
                target = work / name
                if name not in FILES or not target.is_file():
                    raise MongoosePatchError(f"{patch.name}: patches unknown file {name!r}")
                with open(target, encoding="utf-8", newline="") as f:
                    source = f.read().splitlines(keepends=True)
                patched = _apply_hunks(patch, name, source, hunks)
                with open(target, "w", encoding="utf-8", newline="") as f:
                    f.write("".join(patched))
        dest_dir.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            src = work / name
            if not src.is_file():
                continue
            target = dest_dir / name
            data = src.read_bytes()
            if not target.is_file() or target.read_bytes() != data:
                target.write_bytes(data)
    return dest_dir
