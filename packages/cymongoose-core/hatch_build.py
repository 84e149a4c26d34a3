"""Hatchling build hook: fetch and verify mongoose, cythonize and compile ``_mongoose``."""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

# setuptools before anything that may import the stdlib distutils (Cython does, on
# Python < 3.12): a setuptools imported after it fails its distutils check in a
# virtualenv that seeds its own setuptools (AssertionError: .../distutils/core.py).
import setuptools  # noqa: F401  isort: skip
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from build_support.fetch_mongoose import locate  # noqa: E402
from build_support.patch_mongoose import apply_patches  # noqa: E402
from build_support.tls_choice import TlsChoice, choose_tls  # noqa: E402

# Chosen for servers (README "Compile flags"): IPv6, larger header and receive limits
# than mongoose's embedded defaults so browsers, proxies and uploads fit. MG_TLS comes
# from choose_tls (README "TLS"): OpenSSL through tls_openssl.c, else the built-in stack.
DEFINES = [
    ("MG_ENABLE_IPV6", "1"),
    ("MG_MAX_HTTP_HEADERS", "100"),
    ("MG_MAX_RECV_SIZE", str(64 * 1024 * 1024)),
    ("MG_IO_SIZE", "16384"),
    ("MG_ENABLE_LINES", "0"),
]


def _compile_extension(mongoose_dir: Path, build_temp: Path, tls: TlsChoice) -> Path:
    from setuptools import Distribution, Extension
    from Cython.Build import cythonize  # isort: skip

    pkg = ROOT / "src" / "cymongoose"
    extra = os.environ.get("CYMONGOOSE_CFLAGS", "").split()
    ext = Extension(
        "cymongoose._mongoose",
        sources=[str(pkg / "_mongoose.pyx"), str(mongoose_dir / "mongoose.c"),
                 str(pkg / "tls_openssl.c")],
        include_dirs=[str(mongoose_dir), str(pkg), *tls.include_dirs],
        define_macros=[("MG_TLS", tls.mg_tls), *DEFINES],
        library_dirs=tls.library_dirs,
        libraries=tls.libraries,
        extra_compile_args=["-O2", "-Wno-unused-function", *extra],
        extra_link_args=os.environ.get("CYMONGOOSE_LDFLAGS", "").split(),
    )
    [ext] = cythonize(
        [ext],
        compiler_directives={"language_level": "3", "embedsignature": True},
        include_path=[str(pkg)],
        quiet=True,
    )
    dist = Distribution({"name": "cymongoose-core", "ext_modules": [ext]})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(build_temp / "lib")
    cmd.build_temp = str(build_temp / "tmp")
    cmd.ensure_finalized()
    cmd.run()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return build_temp / "lib" / "cymongoose" / f"_mongoose{suffix}"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        mongoose_dir = locate(ROOT)
        if self.target_name == "sdist":
            for name in ("mongoose.c", "mongoose.h", "LICENSE"):
                if (mongoose_dir / name).is_file():
                    build_data["force_include"][str(mongoose_dir / name)] = f"mongoose/{name}"
            return
        if self.target_name != "wheel":
            return
        tls = choose_tls()
        if tls.warning:
            self.app.display_warning(f"cymongoose-core: {tls.warning}")
        # A build directory per flag set: setuptools skips linking when an output
        # newer than the sources exists, which would mix sanitizer and plain builds.
        flags = "|".join([*(os.environ.get(v, "") for v in ("CYMONGOOSE_CFLAGS",
                                                             "CYMONGOOSE_LDFLAGS")),
                          tls.mg_tls])
        tag = hashlib.sha256(flags.encode()).hexdigest()[:12]
        # Our patches (patches/*.patch, each with its reason) go onto a copy of the
        # verified pristine sources; the build stops if one no longer applies.
        patched = apply_patches(mongoose_dir, ROOT / "patches", ROOT / "build" / "mongoose")
        built = _compile_extension(patched, ROOT / "build" / tag, tls)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version == "editable":
            target = ROOT / "src" / "cymongoose" / built.name
            # A new file renamed over the old one: processes that have the old one
            # mapped keep it (overwriting in place kills them with SIGBUS).
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(built.read_bytes())
            os.replace(tmp, target)
        else:
            build_data["force_include"][str(built)] = f"cymongoose/{built.name}"
