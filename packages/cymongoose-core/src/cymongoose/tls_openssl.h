// TLS on OpenSSL for mongoose (MG_TLS=MG_TLS_CUSTOM): see tls_openssl.c.
#ifndef CYMONGOOSE_TLS_OPENSSL_H
#define CYMONGOOSE_TLS_OPENSSL_H

#include "mongoose.h"

// 1 when this build's TLS is OpenSSL through tls_openssl.c, 0 when it is mongoose's
// built-in stack (MG_TLS_BUILTIN); the functions below then only report that.
#if MG_TLS == MG_TLS_CUSTOM
#define CYM_TLS_OPENSSL 1
#else
#define CYM_TLS_OPENSSL 0
#endif

// What cym_tls_ctx_new refused (the binding names the argument in its ValueError).
enum {
  CYM_TLS_OK = 0,
  CYM_TLS_E_CA,             // ca holds no certificate
  CYM_TLS_E_CERT,           // cert holds no certificate
  CYM_TLS_E_KEY,            // key holds no private key
  CYM_TLS_E_KEY_ENCRYPTED,  // key is encrypted and no password was given
  CYM_TLS_E_PASSWORD,       // the password does not decrypt key
  CYM_TLS_E_KEY_MISMATCH,   // key is not the private key of cert
  CYM_TLS_E_CIPHERS,        // no cipher in the cipher list is known
  CYM_TLS_E_VERSION,        // minimum version refused
  CYM_TLS_E_ALPN,           // ALPN list refused
  CYM_TLS_E_OOM,
  CYM_TLS_E_UNSUPPORTED     // built-in stack: no SSL_CTX
};

// Settings of one shared SSL_CTX (one per TlsOpts). An mg_str with buf NULL is absent;
// ciphers is NUL-terminated or NULL (OpenSSL's default list).
struct cym_tls_conf {
  struct mg_str ca, cert, key, password;
  const char *ciphers;
  struct mg_str alpn;  // ALPN protocol list in wire format (length-prefixed names)
  int min_version;     // 0x0303 TLS 1.2, 0x0304 TLS 1.3
  int cert_reqs;       // as a server: 0 no client certificate, 1 optional, 2 required
};

int cym_tls_ctx_new(const struct cym_tls_conf *conf, void **ctx, char *reason,
                    size_t reason_len);
void cym_tls_ctx_free(void *ctx);
int cym_tls_ctx_use_default_ca(void *ctx, char *reason, size_t reason_len);
void cym_tls_attach(struct mg_connection *c, void *ctx, const char *name, int verify);
const char *cym_tls_library(void);
// What a connection's TLS session negotiated (Connection.tls_info; see tls_openssl.c).
int cym_tls_conn_info(struct mg_connection *c, int *version, int *cipher, long *verify);
char *cym_tls_conn_cert(struct mg_connection *c, int which, size_t *len);
char *cym_tls_peer_subject(struct mg_connection *c, size_t *len);
const char *cym_tls_verify_error(long result);

#endif
