// TLS on OpenSSL for mongoose 7.23 (MG_TLS=MG_TLS_CUSTOM: mongoose calls the mg_tls_*
// functions below; everything else in mongoose is unchanged).
//
// Why not mongoose's own OpenSSL glue (MG_TLS_OPENSSL): it builds a new SSL_CTX and
// parses the PEM certificate and key for every connection (about 470 us on OpenSSL 3.0,
// more than a whole ECDSA handshake), and it has no key password, cipher list,
// minimum version, optional client certificates, ALPN, nor a reason for a failed
// handshake. Here one SSL_CTX is built, checked and shared per TlsOpts
// (cym_tls_ctx_new, called by the binding when the TlsOpts is made, so that a bad
// argument fails at start-up), and each connection gets only an SSL object.
//
// The socket I/O stays mongoose's: OpenSSL reads the encrypted bytes that mongoose
// received into c->rtls (mg_io_recv) and writes to the socket through mg_io_send.

#include "tls_openssl.h"

#if MG_TLS == MG_TLS_CUSTOM

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "cymongoose needs OpenSSL 1.1.1 or later (TLS 1.3)"
#endif

struct mg_tls {
  SSL *ssl;
};

static BIO_METHOD *s_bio_method;  // one for all connections, made on first use
static int s_alpn_index = -1;     // SSL_CTX ex_data: the server's ALPN list

// The reason of the newest OpenSSL error ("no shared cipher"), then an empty queue:
// the queue is per thread, and an error left in it would fail the next connection.
static void take_reason(char *reason, size_t len, const char *fallback) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
  if (reason != NULL && len > 0) {
    if (r != NULL) {
      snprintf(reason, len, "%s", r);
    } else if (e != 0) {
      snprintf(reason, len, "OpenSSL error %lx", e);
    } else {
      snprintf(reason, len, "%s", fallback);
    }
  }
  ERR_clear_error();
}

// --- BIO: OpenSSL's I/O through mongoose's buffers ---------------------------------

static int bio_read(BIO *bio, char *buf, int len) {
  struct mg_connection *c = (struct mg_connection *) BIO_get_data(bio);
  long n = mg_io_recv(c, buf, (size_t) len);
  BIO_clear_retry_flags(bio);
  if (n == MG_IO_WAIT) BIO_set_retry_read(bio);
  return n > 0 ? (int) n : -1;
}

static int bio_write(BIO *bio, const char *buf, int len) {
  struct mg_connection *c = (struct mg_connection *) BIO_get_data(bio);
  long n = mg_io_send(c, buf, (size_t) len);
  BIO_clear_retry_flags(bio);
  if (n == MG_IO_WAIT) BIO_set_retry_write(bio);
  return n > 0 ? (int) n : -1;
}

static long bio_ctrl(BIO *bio, int cmd, long larg, void *parg) {
  (void) bio, (void) larg, (void) parg;
  return cmd == BIO_CTRL_FLUSH || cmd == BIO_CTRL_PUSH || cmd == BIO_CTRL_POP ? 1 : 0;
}

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                      void *argp) {
  (void) parent, (void) ad, (void) idx, (void) argl, (void) argp;
  OPENSSL_free(ptr);
}

static int global_init(void) {
  if (s_bio_method != NULL) return 1;
  s_alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
  s_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mongoose");
  if (s_bio_method == NULL || s_alpn_index < 0) return 0;
  BIO_meth_set_read(s_bio_method, bio_read);
  BIO_meth_set_write(s_bio_method, bio_write);
  BIO_meth_set_ctrl(s_bio_method, bio_ctrl);
  return 1;
}

// --- SSL_CTX: one per TlsOpts --------------------------------------------------------

struct password {
  struct mg_str value;
  int asked;
};

// Never let OpenSSL prompt on the terminal for a key's password.
static int password_cb(char *buf, int size, int rwflag, void *u) {
  struct password *pw = (struct password *) u;
  (void) rwflag;
  if (pw == NULL) return -1;
  pw->asked = 1;
  if (pw->value.buf == NULL || pw->value.len > (size_t) size) return -1;
  memcpy(buf, pw->value.buf, pw->value.len);
  return (int) pw->value.len;
}

static BIO *mem_bio(struct mg_str s) {
  return BIO_new_mem_buf(s.buf, s.len > INT_MAX ? INT_MAX : (int) s.len);
}

static int is_der(struct mg_str s) {
  return s.len > 0 && MG_IS_DER(s.buf);
}

// Every certificate of a PEM (or one DER) blob, in order; NULL if none.
static STACK_OF(X509) *read_certs(struct mg_str s) {
  STACK_OF(X509) *certs = sk_X509_new_null();
  BIO *bio = mem_bio(s);
  X509 *x;
  if (certs == NULL || bio == NULL) goto fail;
  if (is_der(s)) {
    if ((x = d2i_X509_bio(bio, NULL)) != NULL && !sk_X509_push(certs, x)) X509_free(x);
  } else {
    while ((x = PEM_read_bio_X509(bio, NULL, password_cb, NULL)) != NULL) {
      if (!sk_X509_push(certs, x)) {
        X509_free(x);
        break;
      }
    }
  }
  BIO_free(bio);
  if (sk_X509_num(certs) == 0) {
    sk_X509_free(certs);
    return NULL;
  }
  ERR_clear_error();  // the end of the PEM data reads as an error
  return certs;
fail:
  BIO_free(bio);
  sk_X509_free(certs);
  return NULL;
}

static EVP_PKEY *read_key(struct mg_str s, struct password *pw) {
  BIO *bio = mem_bio(s);
  EVP_PKEY *key = NULL;
  if (bio == NULL) return NULL;
  if (is_der(s)) {
    key = d2i_PrivateKey_bio(bio, NULL);
    if (key == NULL) {
      (void) BIO_reset(bio);
      key = d2i_PKCS8PrivateKey_bio(bio, NULL, password_cb, pw);
    }
  } else {
    key = PEM_read_bio_PrivateKey(bio, NULL, password_cb, pw);
  }
  BIO_free(bio);
  return key;
}

static int use_cert_and_key(SSL_CTX *ctx, const struct cym_tls_conf *conf, char *reason,
                            size_t len) {
  struct password pw = {conf->password, 0};
  STACK_OF(X509) *certs = read_certs(conf->cert);
  EVP_PKEY *key;
  int i, ok;
  if (certs == NULL) {
    take_reason(reason, len, "no certificate found");
    return CYM_TLS_E_CERT;
  }
  ok = SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0));
  for (i = 1; ok && i < sk_X509_num(certs); i++) {
    ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i));
  }
  sk_X509_pop_free(certs, X509_free);
  if (!ok) {
    take_reason(reason, len, "certificate refused");
    return CYM_TLS_E_CERT;
  }
  key = read_key(conf->key, &pw);
  if (key == NULL) {
    take_reason(reason, len, "no private key found");
    if (pw.asked && conf->password.buf == NULL) return CYM_TLS_E_KEY_ENCRYPTED;
    return pw.asked ? CYM_TLS_E_PASSWORD : CYM_TLS_E_KEY;
  }
  ok = SSL_CTX_use_PrivateKey(ctx, key) && SSL_CTX_check_private_key(ctx);
  EVP_PKEY_free(key);
  if (!ok) {
    take_reason(reason, len, "key values mismatch");
    return CYM_TLS_E_KEY_MISMATCH;
  }
  return CYM_TLS_OK;
}

static int use_ca(SSL_CTX *ctx, struct mg_str ca, char *reason, size_t len) {
  STACK_OF(X509) *certs = read_certs(ca);
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  int i, ok = 1;
  if (certs == NULL) {
    take_reason(reason, len, "no certificate found");
    return CYM_TLS_E_CA;
  }
  for (i = 0; ok && i < sk_X509_num(certs); i++) {
    // The names go in the server's CertificateRequest: clients pick a certificate by them.
    ok = X509_STORE_add_cert(store, sk_X509_value(certs, i)) &&
         SSL_CTX_add_client_CA(ctx, sk_X509_value(certs, i));
  }
  sk_X509_pop_free(certs, X509_free);
  if (!ok) {
    take_reason(reason, len, "certificate refused");
    return CYM_TLS_E_CA;
  }
  return CYM_TLS_OK;
}

// A server picks the first of its own protocols that the client offers; none in
// common: no ALPN in the answer (the client decides whether to go on).
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  const unsigned char *ours =
      (const unsigned char *) SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), s_alpn_index);
  (void) arg;
  if (ours == NULL ||
      SSL_select_next_proto((unsigned char **) out, outlen, ours + 1, ours[0], in, inlen) !=
          OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  return SSL_TLSEXT_ERR_OK;
}

static int use_alpn(SSL_CTX *ctx, struct mg_str alpn) {
  unsigned char *copy;
  if (alpn.len == 0 || alpn.len > 255) return alpn.len == 0;
  // SSL_CTX_set_alpn_protos (the client's offer) returns 0 on success.
  if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *) alpn.buf, (unsigned) alpn.len)) {
    return 0;
  }
  if ((copy = (unsigned char *) OPENSSL_malloc(alpn.len + 1)) == NULL) return 0;
  copy[0] = (unsigned char) alpn.len;
  memcpy(copy + 1, alpn.buf, alpn.len);
  if (!SSL_CTX_set_ex_data(ctx, s_alpn_index, copy)) {
    OPENSSL_free(copy);
    return 0;
  }
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  return 1;
}

int cym_tls_ctx_new(const struct cym_tls_conf *conf, void **out, char *reason,
                    size_t len) {
  static const unsigned char sid[] = "cymongoose";
  SSL_CTX *ctx;
  int rc = CYM_TLS_OK, verify = SSL_VERIFY_NONE;
  *out = NULL;
  ERR_clear_error();
  if (!global_init() || (ctx = SSL_CTX_new(TLS_method())) == NULL) {
    take_reason(reason, len, "out of memory");
    return CYM_TLS_E_OOM;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_RENEGOTIATION);
  // Partial writes: mongoose drops from its send buffer what each record took.
  // Released buffers: an idle connection keeps no 34 KB of OpenSSL buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Sessions resume only within one context: name it (needed once peers are verified).
  SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
  if (!SSL_CTX_set_min_proto_version(ctx, conf->min_version)) {
    take_reason(reason, len, "unsupported version");
    rc = CYM_TLS_E_VERSION;
  } else if (conf->ciphers != NULL && !SSL_CTX_set_cipher_list(ctx, conf->ciphers)) {
    take_reason(reason, len, "no cipher match");
    rc = CYM_TLS_E_CIPHERS;
  } else if (!use_alpn(ctx, conf->alpn)) {
    take_reason(reason, len, "invalid protocol list");
    rc = CYM_TLS_E_ALPN;
  }
  if (rc == CYM_TLS_OK && conf->cert.buf != NULL) rc = use_cert_and_key(ctx, conf, reason, len);
  if (rc == CYM_TLS_OK && conf->ca.buf != NULL) rc = use_ca(ctx, conf->ca, reason, len);
  if (rc != CYM_TLS_OK) {
    SSL_CTX_free(ctx);
    return rc;
  }
  // As a server (a client sets its own mode in cym_tls_attach).
  if (conf->cert_reqs >= 1) verify = SSL_VERIFY_PEER;
  if (conf->cert_reqs >= 2) verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, verify, NULL);
  *out = ctx;
  return CYM_TLS_OK;
}

void cym_tls_ctx_free(void *ctx) {
  SSL_CTX_free((SSL_CTX *) ctx);  // connections hold their own references
}

// The system's CA certificates (OpenSSL's default paths; SSL_CERT_FILE and
// SSL_CERT_DIR override them), for clients given no CA of their own.
int cym_tls_ctx_use_default_ca(void *ctx, char *reason, size_t len) {
  ERR_clear_error();
  if (!SSL_CTX_set_default_verify_paths((SSL_CTX *) ctx)) {
    take_reason(reason, len, "cannot load the default CA certificates");
    return CYM_TLS_E_CA;
  }
  return CYM_TLS_OK;
}

// --- one connection -----------------------------------------------------------------

// Start TLS on c with the shared ctx: the server side on accepted connections, the
// client side otherwise. A client checks the server's certificate when verify is set,
// and its name against `name` (a DNS name, also sent as SNI, or an IP address).
void cym_tls_attach(struct mg_connection *c, void *ctx, const char *name, int verify) {
  struct mg_tls *tls = (struct mg_tls *) mg_calloc(1, sizeof(*tls));
  BIO *bio = NULL;
  if (tls == NULL || (tls->ssl = SSL_new((SSL_CTX *) ctx)) == NULL ||
      (bio = BIO_new(s_bio_method)) == NULL) {
    if (tls != NULL) SSL_free(tls->ssl);
    mg_free(tls);
    ERR_clear_error();
    mg_error(c, "TLS: out of memory");
    return;
  }
  BIO_set_data(bio, c);
  BIO_set_init(bio, 1);
  SSL_set_bio(tls->ssl, bio, bio);
  if (c->is_accepted) {
    SSL_set_accept_state(tls->ssl);
  } else {
    int ok = 1;
    SSL_set_connect_state(tls->ssl);
    SSL_set_verify(tls->ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (name != NULL && name[0] != '\0') {
      X509_VERIFY_PARAM *param = SSL_get0_param(tls->ssl);
      ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
      if (ip != NULL) {  // an address: checked, never sent as SNI (RFC 6066 3)
        ASN1_OCTET_STRING_free(ip);
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, name);
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(tls->ssl, name) && SSL_set_tlsext_host_name(tls->ssl, name);
      }
    }
    if (!ok) {
      SSL_free(tls->ssl);
      mg_free(tls);
      ERR_clear_error();
      mg_error(c, "TLS: invalid server name");
      return;
    }
  }
  c->tls = tls;
  c->is_tls = 1;
  c->is_tls_hs = 1;
}

const char *cym_tls_library(void) {
  return OpenSSL_version(OPENSSL_VERSION);
}

// --- mongoose's TLS interface (mongoose.h "TLS") ---------------------------------------

void mg_tls_init(struct mg_connection *c, const struct mg_tls_opts *opts) {
  // mongoose's own entry point (the binding calls cym_tls_attach): a context for this
  // connection alone.
  struct cym_tls_conf conf;
  void *ctx = NULL;
  char reason[100];
  char *name = mg_mprintf("%.*s", (int) opts->name.len,
                          opts->name.buf == NULL ? "" : opts->name.buf);
  memset(&conf, 0, sizeof(conf));
  conf.ca = opts->ca.len > 0 ? opts->ca : mg_str_n(NULL, 0);
  if (opts->cert.len > 0) conf.cert = opts->cert, conf.key = opts->key;
  conf.min_version = TLS1_2_VERSION;
  conf.cert_reqs = conf.ca.buf != NULL ? 2 : 0;
  if (name == NULL || cym_tls_ctx_new(&conf, &ctx, reason, sizeof(reason)) != CYM_TLS_OK) {
    mg_error(c, "TLS: %s", name == NULL ? "out of memory" : reason);
  } else {
    cym_tls_attach(c, ctx, name, !opts->skip_verification && conf.ca.buf != NULL);
    SSL_CTX_free((SSL_CTX *) ctx);  // the connection's SSL keeps its reference
  }
  mg_free(name);
}

void mg_tls_free(struct mg_connection *c) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  if (tls == NULL) return;
  SSL_free(tls->ssl);
  mg_free(tls);
  c->tls = NULL;
}

void mg_tls_handshake(struct mg_connection *c) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  char reason[100];
  int rc, err;
  long verified;
  if (tls == NULL) return;
  rc = SSL_do_handshake(tls->ssl);
  if (rc == 1) {
    c->is_tls_hs = 0;
    mg_call(c, MG_EV_TLS_HS, NULL);
    return;
  }
  err = SSL_get_error(tls->ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return;
  }
  // The reason the peer or we gave up: a certificate check ("unable to get local
  // issuer certificate", "Hostname mismatch") or OpenSSL's ("no shared cipher").
  verified = SSL_get_verify_result(tls->ssl);
  if (verified != X509_V_OK) {
    snprintf(reason, sizeof(reason), "%s", X509_verify_cert_error_string(verified));
    ERR_clear_error();
  } else {
    take_reason(reason, sizeof(reason),
                err == SSL_ERROR_SYSCALL ? "connection closed by peer" : "failed");
  }
  mg_error(c, "TLS handshake: %s", reason);
}

// --- What a connection negotiated (Connection.tls_info) -----------------------------

// 1 and the protocol version (0x0304 for TLS 1.3), the cipher suite's IANA number and
// the result of the peer certificate's check (X509_V_OK, 0, when none was sent) once
// c's handshake is done; else 0.
int cym_tls_conn_info(struct mg_connection *c, int *version, int *cipher, long *verify) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  const SSL_CIPHER *suite;
  if (tls == NULL || c->is_tls_hs || !SSL_is_init_finished(tls->ssl)) return 0;
  suite = SSL_get_current_cipher(tls->ssl);
  *version = SSL_version(tls->ssl);
  *cipher = suite != NULL ? (int) SSL_CIPHER_get_protocol_id(suite) : -1;
  *verify = SSL_get_verify_result(tls->ssl);
  return 1;
}

// The text a memory BIO holds, NUL-terminated, malloc'd (the caller frees), or NULL.
static char *bio_text(BIO *bio, size_t *len) {
  char *data, *out = NULL;
  long n = BIO_get_mem_data(bio, &data);
  if (n > 0 && (out = (char *) malloc((size_t) n + 1)) != NULL) {
    memcpy(out, data, (size_t) n);
    out[n] = '\0';
    *len = (size_t) n;
  }
  BIO_free(bio);
  ERR_clear_error();
  return out;
}

static X509 *peer_cert(SSL *ssl) {  // a new reference, or NULL
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  return SSL_get1_peer_certificate(ssl);
#else
  return SSL_get_peer_certificate(ssl);
#endif
}

// A certificate of c's session as PEM (malloc'd, the caller frees; *len bytes), or NULL
// when there is none: which 0 is ours, 1 the peer's, 2 and on the rest of the chain the
// peer sent (each signing the one before).
char *cym_tls_conn_cert(struct mg_connection *c, int which, size_t *len) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  X509 *cert = NULL, *owned = NULL;
  BIO *bio;
  if (tls == NULL || which < 0) return NULL;
  if (which == 0) {
    cert = SSL_get_certificate(tls->ssl);
  } else if (which == 1) {
    cert = owned = peer_cert(tls->ssl);
  } else {
    // A server's chain leaves out the client's own certificate; a client's starts with it.
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(tls->ssl);
    int i = c->is_accepted ? which - 2 : which - 1;
    if (chain != NULL && i < sk_X509_num(chain)) cert = sk_X509_value(chain, i);
  }
  if (cert == NULL || (bio = BIO_new(BIO_s_mem())) == NULL) {
    X509_free(owned);
    return NULL;
  }
  if (!PEM_write_bio_X509(bio, cert)) (void) BIO_reset(bio);
  X509_free(owned);
  return bio_text(bio, len);
}

// The subject of the peer's certificate as an RFC 4514 string (malloc'd, the caller
// frees; *len bytes), or NULL when the peer sent none.
char *cym_tls_peer_subject(struct mg_connection *c, size_t *len) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  X509 *cert;
  BIO *bio;
  if (tls == NULL || (cert = peer_cert(tls->ssl)) == NULL) return NULL;
  if ((bio = BIO_new(BIO_s_mem())) == NULL) {
    X509_free(cert);
    return NULL;
  }
  if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
    (void) BIO_reset(bio);
  }
  X509_free(cert);
  return bio_text(bio, len);
}

const char *cym_tls_verify_error(long result) {
  return X509_verify_cert_error_string(result);
}

size_t mg_tls_pending(struct mg_connection *c) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  return tls == NULL ? 0 : (size_t) SSL_pending(tls->ssl);
}

long mg_tls_recv(struct mg_connection *c, void *buf, size_t len) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  int n, err;
  if (tls == NULL) return MG_IO_ERR;
  if (len == 0) return MG_IO_WAIT;  // SSL_read would report a 0-byte read as an error
  n = SSL_read(tls->ssl, buf, len > INT_MAX ? INT_MAX : (int) len);
  if (n > 0) return n;
  err = SSL_get_error(tls->ssl, n);
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return MG_IO_WAIT;
  return MG_IO_ERR;  // close_notify or an error: the connection ends
}

// Records until the socket is full. A record cut short stays with OpenSSL, which
// expects the same bytes again at the start of the next call; mongoose keeps them at
// the start of its send buffer, as they were not counted as sent.
long mg_tls_send(struct mg_connection *c, const void *buf, size_t len) {
  struct mg_tls *tls = (struct mg_tls *) c->tls;
  size_t sent = 0;
  int n, err = SSL_ERROR_NONE;
  if (tls == NULL) return MG_IO_ERR;
  while (sent < len) {
    size_t chunk = len - sent > INT_MAX ? INT_MAX : len - sent;
    n = SSL_write(tls->ssl, (const char *) buf + sent, (int) chunk);
    if (n <= 0) {
      err = SSL_get_error(tls->ssl, n);
      ERR_clear_error();
      break;
    }
    sent += (size_t) n;
  }
  if (sent > 0) return (long) sent;
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return MG_IO_WAIT;
  return len == 0 ? 0 : MG_IO_ERR;
}

void mg_tls_flush(struct mg_connection *c) {
  (void) c;
}

void mg_tls_ctx_init(struct mg_mgr *mgr) {
  (void) mgr;
}

void mg_tls_ctx_free(struct mg_mgr *mgr) {
  (void) mgr;
}

#else  // mongoose's built-in TLS: no OpenSSL in this build

int cym_tls_ctx_new(const struct cym_tls_conf *conf, void **ctx, char *reason,
                    size_t reason_len) {
  (void) conf;
  *ctx = NULL;
  if (reason != NULL && reason_len > 0) reason[0] = '\0';
  return CYM_TLS_E_UNSUPPORTED;
}

void cym_tls_ctx_free(void *ctx) {
  (void) ctx;
}

int cym_tls_ctx_use_default_ca(void *ctx, char *reason, size_t reason_len) {
  (void) ctx, (void) reason, (void) reason_len;
  return CYM_TLS_E_UNSUPPORTED;
}

void cym_tls_attach(struct mg_connection *c, void *ctx, const char *name, int verify) {
  (void) ctx, (void) name, (void) verify;
  mg_error(c, "TLS: this build has no OpenSSL");
}

const char *cym_tls_library(void) {
  return "mongoose built-in TLS " MG_VERSION;
}

int cym_tls_conn_info(struct mg_connection *c, int *version, int *cipher, long *verify) {
  (void) c, (void) version, (void) cipher, (void) verify;
  return 0;
}

char *cym_tls_conn_cert(struct mg_connection *c, int which, size_t *len) {
  (void) c, (void) which, (void) len;
  return NULL;
}

char *cym_tls_peer_subject(struct mg_connection *c, size_t *len) {
  (void) c, (void) len;
  return NULL;
}

const char *cym_tls_verify_error(long result) {
  (void) result;
  return "";
}

#endif
