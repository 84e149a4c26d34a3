# TLS options (mongoose's built-in TLS 1.3 stack, MG_TLS_BUILTIN).

# Certificate validity is checked against mg_now(): start mongoose's wall clock
# at the host's time instead of 0 (an SNTP sync overwrites it later).
import time as _time
mg_boot_timestamp_ms = <uint64_t>(_time.time() * 1000) - mg_millis()


cdef inline bytes _pem_arg(object v, str what):
    if v is None:
        return b""
    return _as_bytes(v, what)


cdef class TlsOpts:
    """TLS settings for ``Connection.tls_init`` (``struct mg_tls_opts``).

    ``ca``: CA certificate(s) to verify the peer, PEM/DER bytes or str;
    ``cert``/``key``: our certificate and private key (required on a server);
    ``name``: server name for SNI and hostname verification (client);
    ``skip_verification``: accept any peer certificate (development only).
    Raises TypeError for an argument that is not bytes/str/None.
    """

    # Fields and C methods are declared in tls.pxd.

    def __init__(self, ca=None, cert=None, key=None, name=None, skip_verification=False):
        self.ca = _pem_arg(ca, "ca")
        self.cert = _pem_arg(cert, "cert")
        self.key = _pem_arg(key, "key")
        self.name = _pem_arg(name, "name")
        self.skip_verification = bool(skip_verification)
        if bool(self.cert) != bool(self.key):
            raise ValueError("cert and key must be given together")

    cdef void _fill(self, mg_tls_opts *o):
        # Absent fields stay {NULL, 0}: mongoose tests .buf, not .len, for presence.
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
                f" name={self.name.decode(errors='replace')!r} skip_verification={self.skip_verification}>")
