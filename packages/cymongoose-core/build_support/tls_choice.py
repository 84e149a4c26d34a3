"""Which TLS library the core is built with: OpenSSL when its headers are found, else
mongoose's built-in stack.

``CYMONGOOSE_TLS`` forces the choice: ``openssl`` (the build fails when OpenSSL cannot be
compiled against) or ``builtin``. Unset or empty: OpenSSL if a test program compiles
and links against it (include and library directories from ``pkg-config openssl`` when
pkg-config knows it, else the compiler's defaults), otherwise the built-in stack with a
warning that says what to install.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ENV = "CYMONGOOSE_TLS"
CHOICES = ("openssl", "builtin")
INSTALL_HINT = ("install the OpenSSL headers (Debian/Ubuntu: apt-get install libssl-dev; "
                "Fedora/RHEL: dnf install openssl-devel; Alpine: apk add openssl-dev)")

# OpenSSL 1.1.1 or later: TLS 1.3 and the API tls_openssl.c uses.
_PROBE = b"""
#include <openssl/ssl.h>
#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "OpenSSL 1.1.1 or later is needed"
#endif
int main(void) { return SSL_CTX_new(TLS_method()) == NULL; }
"""


class TlsBuildError(RuntimeError):
    """``CYMONGOOSE_TLS`` is invalid, or asks for OpenSSL that cannot be built against."""


@dataclass
class TlsChoice:
    """The TLS library of one build and how to compile against it."""

    library: str  # "openssl" or "builtin"
    mg_tls: str  # mongoose's MG_TLS value
    include_dirs: list[str] = field(default_factory=list)
    library_dirs: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)
    warning: str | None = None


def _pkg_config() -> tuple[list[str], list[str], list[str]]:
    """(include dirs, library dirs, libraries) of ``pkg-config openssl``; empty lists
    (the compiler's defaults, -lssl -lcrypto) when pkg-config is absent or does not know
    OpenSSL."""
    if shutil.which("pkg-config"):
        try:
            out = subprocess.run(["pkg-config", "--cflags", "--libs", "openssl"],
                                 capture_output=True, text=True, check=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        flags = shlex.split(out)
        libs = [f[2:] for f in flags if f.startswith("-l")]
        if libs:
            return ([f[2:] for f in flags if f.startswith("-I")],
                    [f[2:] for f in flags if f.startswith("-L")], libs)
    return [], [], ["ssl", "crypto"]


def probe_openssl() -> tuple[TlsChoice | None, str]:
    """OpenSSL's build settings if a test program compiles and links against it, else
    (None, the compiler's complaint)."""
    includes, libdirs, libs = _pkg_config()
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_bytes(_PROBE)
        cmd = [*cc, str(src), "-o", str(Path(tmp) / "probe"),
               *(f"-I{d}" for d in includes), *(f"-L{d}" for d in libdirs),
               *(f"-l{lib}" for lib in libs)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, str(exc)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        # "probe.c:2:10: fatal error: openssl/ssl.h: ..." without the temporary path
        first = re.sub(r"^\S*probe\.c:[\d:]* ", "", lines[0]) if lines else ""
        return None, first or f"{cmd[0]} exited with {proc.returncode}"
    return TlsChoice("openssl", "MG_TLS_CUSTOM", includes, libdirs, libs), ""


def choose_tls(forced: str | None = None, probe=probe_openssl) -> TlsChoice:
    """The TLS library for this build: ``forced`` (default: ``$CYMONGOOSE_TLS``) or the
    best one found. Raises TlsBuildError for an unknown value, or for ``openssl`` when
    ``probe()`` finds no usable OpenSSL."""
    value = (os.environ.get(ENV, "") if forced is None else forced).strip().lower()
    if value not in ("", *CHOICES):
        raise TlsBuildError(f"{ENV}={value!r}: expected one of {', '.join(CHOICES)} "
                            "(or unset: OpenSSL when found, else built-in)")
    if value == "builtin":
        return TlsChoice("builtin", "MG_TLS_BUILTIN")
    found, why = probe()
    if found is not None:
        return found
    if value == "openssl":
        raise TlsBuildError(f"{ENV}=openssl but OpenSSL (1.1.1 or later) cannot be "
                            f"compiled against: {why}; {INSTALL_HINT}")
    return TlsChoice("builtin", "MG_TLS_BUILTIN", warning=(
        f"OpenSSL not found ({why}): building mongoose's built-in TLS stack instead "
        "(EC P-256 keys and TLS 1.3 only; no key passwords, cipher lists or ALPN). "
        f"For TLS on OpenSSL, {INSTALL_HINT} and rebuild."))
