# TLS options: OpenSSL through tls_openssl.c (one SSL_CTX per TlsOpts, built and checked
# here), or mongoose's built-in stack in a build without OpenSSL (README "TLS").

# The built-in stack checks certificate dates against mg_now(): start mongoose's wall
# clock at the host's time instead of 0 (an SNTP sync overwrites it later).
import time as _time
mg_boot_timestamp_ms = <uint64_t>(_time.time() * 1000) - mg_millis()

#: The TLS library of this build, e.g. ``"OpenSSL 3.0.19 27 Jan 2026"`` (the library
#: loaded at run time), or ``"mongoose built-in TLS 7.23"`` in a build without OpenSSL.
TLS_LIBRARY = cym_tls_library().decode()

# min_version: accepted names and ssl.TLSVersion values -> (name, protocol number)
_TLS_VERSIONS = {"tlsv1.2": ("TLSv1.2", 0x0303), "tlsv1.3": ("TLSv1.3", 0x0304),
                 0x0303: ("TLSv1.2", 0x0303), 0x0304: ("TLSv1.3", 0x0304)}
_CERT_REQS = ("CERT_NONE", "CERT_OPTIONAL", "CERT_REQUIRED")

# What cym_tls_ctx_new refused -> (argument, how to say it; {reason} is OpenSSL's)
_CTX_ERRORS = {
    CYM_TLS_E_CA: ("ca", "holds no usable CA certificate ({reason})"),
    CYM_TLS_E_CERT: ("cert", "holds no usable certificate ({reason})"),
    CYM_TLS_E_KEY: ("key", "holds no usable private key ({reason})"),
    CYM_TLS_E_KEY_ENCRYPTED: ("key", "is encrypted and no password was given"),
    CYM_TLS_E_PASSWORD: ("password", "does not decrypt the key ({reason})"),
    CYM_TLS_E_KEY_MISMATCH: ("key", "is not the private key of the certificate ({reason})"),
    CYM_TLS_E_CIPHERS: ("ciphers", "selects no cipher OpenSSL knows ({reason})"),
    CYM_TLS_E_VERSION: ("min_version", "is refused by OpenSSL ({reason})"),
    CYM_TLS_E_ALPN: ("alpn", "is refused by OpenSSL ({reason})"),
}


cdef object _tls_error(str argument, str problem):
    # ValueError naming the argument; .argument and .problem let a caller (serving.tls)
    # name its own setting instead.
    err = ValueError(f"{argument} {problem}")
    err.argument = argument
    err.problem = problem
    return err


cdef inline bytes _pem_arg(object v, str what):
    if v is None:
        return b""
    return _as_bytes(v, what)


cdef str _alpn_name(object p):
    cdef bytes b = _as_bytes(p, "alpn entry")
    if not b.isascii():
        raise _tls_error("alpn", f"entry {p!r} is not ASCII")
    return b.decode("ascii")


cdef bytes _alpn_wire(tuple names):
    # RFC 7301 3.1: each name as one length byte and 1..255 bytes.
    cdef bytes out = b""
    for name in names:
        if len(name) == 0 or len(name) > 255:
            raise _tls_error("alpn", f"entry {name!r} must be 1..255 bytes long")
        out += bytes((len(name),)) + name
    if len(out) > 255:
        raise _tls_error("alpn", "is too long (255 bytes encoded at most)")
    return out


cdef class TlsOpts:
    """TLS settings for ``Connection.tls_init`` (``struct mg_tls_opts`` and more).

    ``ca``: CA certificate(s), PEM (several) or DER bytes or str. A client verifies the
    server against them (none given: the system's CA certificates, OpenSSL's default
    paths, which ``SSL_CERT_FILE``/``SSL_CERT_DIR`` override); a server asks clients
    for a certificate signed by them (see ``cert_reqs``).
    ``cert``/``key``: our certificate (PEM: followed by its chain) and private key (RSA,
    EC or Ed25519; PKCS#1, SEC1 or PKCS#8; PEM or DER), required on a server.
    ``name``: the server's name for SNI and hostname (or IP address) verification on a
    client; default: the host of the URL the connection was opened with.
    ``skip_verification``: a client accepts any server certificate (development only).

    Keyword-only (OpenSSL builds; see ``TLS_LIBRARY``):
    ``password``: decrypts an encrypted ``key`` (bytes or str).
    ``ciphers``: OpenSSL cipher list for TLS 1.2 (``"ECDHE+AESGCM"``); None keeps
    OpenSSL's default list. TLS 1.3 suites are OpenSSL's defaults whatever this says.
    ``min_version``: ``"TLSv1.2"`` (default) or ``"TLSv1.3"`` (or ``ssl.TLSVersion``).
    ``cert_reqs``: as a server, 0 (``ssl.CERT_NONE``) asks no client certificate, 1
    (``CERT_OPTIONAL``) verifies one if sent, 2 (``CERT_REQUIRED``) refuses clients
    without one; default 2 when ``ca`` is given, else 0.
    ``alpn``: ALPN protocol names (RFC 7301), e.g. ``["http/1.1"]``: a server selects
    the first of these that the client offers, a client offers them.

    The settings are checked here, once, and shared by every connection that uses them.
    Raises TypeError for an argument of the wrong type; ValueError naming the argument
    (also in its ``argument`` attribute) for a PEM without certificate or key, an
    encrypted key without password, a wrong password, a key that is not the
    certificate's, an unknown cipher list or version, or an option the built-in stack
    lacks; MemoryError.
    """

    # Fields and C methods are declared in tls.pxd.

    def __init__(self, ca=None, cert=None, key=None, name=None, skip_verification=False,
                 *, password=None, ciphers=None, min_version="TLSv1.2", cert_reqs=None,
                 alpn=None):
        self.ca = _pem_arg(ca, "ca")
        self.cert = _pem_arg(cert, "cert")
        self.key = _pem_arg(key, "key")
        self.name = _pem_arg(name, "name")
        self.skip_verification = bool(skip_verification)
        if bool(self.cert) != bool(self.key):
            raise ValueError("cert and key must be given together")
        self._password = None if password is None else _as_bytes(password, "password")
        if ciphers is not None and not isinstance(ciphers, str):
            raise TypeError(f"ciphers must be a str or None, not {type(ciphers).__name__}")
        if ciphers is not None and ("\0" in ciphers or not ciphers.isascii()):
            raise _tls_error("ciphers", f"{ciphers!r} is not an OpenSSL cipher list")
        self.ciphers = ciphers
        key_v = min_version.lower() if isinstance(min_version, str) else min_version
        if isinstance(min_version, bool) or not isinstance(min_version, (str, int)):
            raise TypeError(f"min_version must be a str such as 'TLSv1.2', "
                            f"not {type(min_version).__name__}")
        if key_v not in _TLS_VERSIONS:
            raise _tls_error("min_version", f"{min_version!r} is not 'TLSv1.2' or 'TLSv1.3' "
                             "(TLS 1.0 and 1.1 are not offered)")
        self.min_version, self._version = _TLS_VERSIONS[key_v]
        if cert_reqs is None:
            cert_reqs = 2 if self.ca else 0
        if isinstance(cert_reqs, bool) or not isinstance(cert_reqs, int):
            raise TypeError(f"cert_reqs must be 0, 1, 2 (ssl.CERT_*) or None, "
                            f"not {type(cert_reqs).__name__}")
        if not 0 <= cert_reqs <= 2:
            raise _tls_error("cert_reqs", f"{cert_reqs!r} is not 0 (CERT_NONE), "
                             "1 (CERT_OPTIONAL) or 2 (CERT_REQUIRED)")
        if cert_reqs and not self.ca:
            raise _tls_error("cert_reqs", f"{cert_reqs} ({_CERT_REQS[cert_reqs]}) needs ca: "
                             "the CA certificates that sign client certificates")
        self.cert_reqs = int(cert_reqs)
        if alpn is None:
            self.alpn = ()
        elif isinstance(alpn, (str, bytes)) or not hasattr(alpn, "__iter__"):
            raise TypeError(f"alpn must be a list of protocol names such as ['http/1.1'], "
                            f"not {type(alpn).__name__}")
        else:
            self.alpn = tuple(_alpn_name(p) for p in alpn)
        self._alpn = _alpn_wire(tuple(p.encode() for p in self.alpn))
        self._default_ca = False
        if CYM_TLS_OPENSSL:
            self._make_ctx()
        else:
            self._check_builtin()

    def __dealloc__(self):
        if self._ctx != NULL:
            cym_tls_ctx_free(self._ctx)

    cdef _check_builtin(self):
        # The built-in stack has none of these; refuse them rather than ignore them.
        # (ALPN is left out: no ALPN means HTTP/1.1 to every client.)
        asked = [n for n, v in (("password", self._password), ("ciphers", self.ciphers))
                 if v is not None]
        if self.cert_reqs != (2 if self.ca else 0):
            asked.append("cert_reqs")
        if asked:
            raise _tls_error(asked[0], f"needs TLS on OpenSSL; this build has {TLS_LIBRARY} "
                             "(reinstall cymongoose-core with the OpenSSL headers present)")

    cdef _make_ctx(self):
        cdef cym_tls_conf conf
        cdef char reason[128]
        cdef void *ctx = NULL
        cdef int rc
        memset(&conf, 0, sizeof(conf))
        if self.ca:
            conf.ca = _mgs(self.ca)
        if self.cert:
            conf.cert = _mgs(self.cert)
            conf.key = _mgs(self.key)
        if self._password is not None:
            conf.password = _mgs(self._password)
        cdef bytes ciphers = self.ciphers.encode() if self.ciphers is not None else None
        if ciphers is not None:
            conf.ciphers = <char *>ciphers
        if self._alpn:
            conf.alpn = _mgs(self._alpn)
        conf.min_version = self._version
        conf.cert_reqs = self.cert_reqs
        rc = cym_tls_ctx_new(&conf, &ctx, reason, sizeof(reason))
        if rc == CYM_TLS_E_OOM:
            raise MemoryError("TLS: cannot make an OpenSSL context")
        if rc != CYM_TLS_OK:
            argument, problem = _CTX_ERRORS.get(rc, ("TlsOpts", "refused ({reason})"))
            raise _tls_error(argument, problem.format(reason=reason.decode("utf-8", "replace")))
        if self._ctx != NULL:  # __init__ called again
            cym_tls_ctx_free(self._ctx)
        self._ctx = ctx

    cdef int _attach(self, mg_connection *c, bytes host) except -1:
        # Start TLS on c (OpenSSL builds). The server side needs our certificate; a
        # verifying client without a CA of its own gets the system's, loaded once.
        cdef char reason[128]
        cdef bytes name = b""
        cdef bint verify = False
        if c.is_accepted and not self.cert:
            mg_error(c, "TLS: no certificate to serve with (TlsOpts cert and key)")
            return 0
        if not c.is_accepted:
            verify = not self.skip_verification
            name = self.name or host or b""
            if b"\0" in name:
                raise ValueError(f"name {name!r} must not contain NUL")
            if verify and not self.ca and not self._default_ca:
                if cym_tls_ctx_use_default_ca(self._ctx, reason, sizeof(reason)) != CYM_TLS_OK:
                    raise RuntimeError(f"TLS: cannot load the system's CA certificates: "
                                       f"{reason.decode('utf-8', 'replace')}")
                self._default_ca = True
        cym_tls_attach(c, self._ctx, <char *>name, verify)
        return 0

    cdef void _fill(self, mg_tls_opts *o):
        # The built-in stack's options. Absent fields stay {NULL, 0}: mongoose tests
        # .buf, not .len, for presence.
        memset(o, 0, sizeof(mg_tls_opts))
        if self.ca:
            o.ca = _mgs(self.ca)
        if self.cert:
            o.cert = _mgs(self.cert)
        if self.key:
            o.key = _mgs(self.key)
        if self.name:
            o.name = _mgs(self.name)
        o.skip_verification = self.skip_verification

    def __repr__(self):
        return (f"<TlsOpts ca={len(self.ca)}B cert={len(self.cert)}B key={'yes' if self.key else 'no'}"
                f" name={self.name.decode(errors='replace')!r} skip_verification={self.skip_verification}"
                f" min_version={self.min_version!r} cert_reqs={self.cert_reqs}"
                f" alpn={list(self.alpn)!r}>")
