# Declarations of the parts of mongoose.h (7.23) that the binding uses.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t


cdef extern from "mongoose.h" nogil:
    const char *MG_VERSION

    struct mg_str:
        char *buf
        size_t len

    struct mg_iobuf:
        unsigned char *buf
        size_t size
        size_t len
        size_t align

    union mg_addr_u:
        uint8_t ip[16]
        uint32_t ip4

    struct mg_addr:
        mg_addr_u addr
        uint16_t port
        uint8_t scope_id
        bint is_ip6

    ctypedef void (*mg_event_handler_t)(mg_connection *, int, void *)

    struct mg_timer:
        pass

    struct mg_mgr:
        mg_connection *conns
        void *userdata
        mg_timer *timers
        int epoll_fd
        void *(*wait_begin)(mg_mgr *) noexcept nogil  # patch 0002
        void (*wait_end)(mg_mgr *, void *) noexcept nogil

    struct mg_connection:
        mg_connection *next
        mg_mgr *mgr
        mg_addr loc
        mg_addr rem
        void *fd
        unsigned long id
        mg_iobuf recv
        mg_iobuf send
        mg_event_handler_t fn
        void *fn_data
        mg_event_handler_t pfn
        void *pfn_data
        void *tls
        unsigned is_listening
        unsigned is_client
        unsigned is_accepted
        unsigned is_resolving
        unsigned is_connecting
        unsigned is_tls
        unsigned is_udp
        unsigned is_websocket
        unsigned is_mqtt5
        unsigned is_draining
        unsigned is_closing
        unsigned is_full
        unsigned is_resp
        unsigned is_readable
        unsigned is_writable

    enum:
        MG_EV_ERROR
        MG_EV_OPEN
        MG_EV_POLL
        MG_EV_RESOLVE
        MG_EV_CONNECT
        MG_EV_ACCEPT
        MG_EV_TLS_HS
        MG_EV_READ
        MG_EV_WRITE
        MG_EV_CLOSE
        MG_EV_HTTP_HDRS
        MG_EV_HTTP_MSG
        MG_EV_WS_OPEN
        MG_EV_WS_MSG
        MG_EV_WS_CTL
        MG_EV_MQTT_CMD
        MG_EV_MQTT_MSG
        MG_EV_MQTT_OPEN
        MG_EV_SNTP_TIME
        MG_EV_WAKEUP
        MG_EV_USER

    enum:
        WEBSOCKET_OP_CONTINUE
        WEBSOCKET_OP_TEXT
        WEBSOCKET_OP_BINARY
        WEBSOCKET_OP_CLOSE
        WEBSOCKET_OP_PING
        WEBSOCKET_OP_PONG

    enum:
        MG_LL_NONE
        MG_LL_ERROR
        MG_LL_INFO
        MG_LL_DEBUG
        MG_LL_VERBOSE

    enum:
        MG_MAX_HTTP_HEADERS
        MG_TIMER_ONCE
        MG_TIMER_REPEAT
        MG_TIMER_RUN_NOW

    struct mg_http_header:
        mg_str name
        mg_str value

    struct mg_http_message:
        mg_str method
        mg_str uri
        mg_str query
        mg_str proto
        mg_http_header headers[1]
        mg_str body
        mg_str head
        mg_str message

    struct mg_ws_message:
        mg_str data
        uint8_t flags

    void mg_mgr_init(mg_mgr *)
    void mg_mgr_free(mg_mgr *)
    void mg_mgr_poll(mg_mgr *, int ms)
    mg_connection *mg_listen(mg_mgr *, const char *url, mg_event_handler_t fn, void *fn_data)
    mg_connection *mg_connect(mg_mgr *, const char *url, mg_event_handler_t fn, void *fn_data)
    mg_connection *mg_http_listen(mg_mgr *, const char *url, mg_event_handler_t fn, void *fn_data)
    mg_connection *mg_http_connect(mg_mgr *, const char *url, mg_event_handler_t fn, void *fn_data)
    bint mg_send(mg_connection *, const void *, size_t)
    void mg_error(mg_connection *, const char *fmt, ...)
    bint mg_wakeup(mg_mgr *, unsigned long id, const void *buf, size_t len)
    bint mg_wakeup_init(mg_mgr *)
    mg_timer *mg_timer_add(mg_mgr *, uint64_t ms, unsigned flags, void (*fn)(void *), void *arg)
    void mg_timer_free(mg_timer **head, mg_timer *t)
    void mg_free(void *)
    uint64_t mg_millis()
    void mg_http_write_chunk(mg_connection *c, const char *buf, size_t len)
    void mg_ws_upgrade(mg_connection *, mg_http_message *, const char *fmt, ...)
    size_t mg_ws_send(mg_connection *, const void *buf, size_t len, int op)
    mg_str *mg_http_get_header(mg_http_message *, const char *name)
    int mg_http_status(const mg_http_message *hm)
    void mg_log_set(int log_level)
    int mg_log_level
    ctypedef void (*mg_pfn_t)(char, void *) noexcept nogil
    void mg_log_set_fn(mg_pfn_t fn, void *param)
    void mg_pfn_stdout(char c, void *param)
    void mg_iobuf_del(mg_iobuf *, size_t offset, size_t len)
    bint mg_iobuf_resize(mg_iobuf *, size_t)
    void mg_iobuf_free(mg_iobuf *)
    long mg_io_send(mg_connection *c, const void *buf, size_t len)
    enum:
        MG_IO_ERR
        MG_IO_WAIT
    int mg_http_parse(const char *s, size_t len, mg_http_message *)
    int mg_http_get_request_len(const unsigned char *buf, size_t buf_len)
    void mg_call(mg_connection *c, int ev, void *ev_data)

    # Utilities
    bint mg_match(mg_str s, mg_str pattern, mg_str *caps)
    bint mg_random(void *buf, size_t len)
    char *mg_random_str(char *buf, size_t len)
    uint32_t mg_crc32(uint32_t crc, const char *buf, size_t len)
    unsigned short mg_url_port(const char *url)
    bint mg_url_is_ssl(const char *url)
    mg_str mg_url_host(const char *url)
    mg_str mg_url_user(const char *url)
    mg_str mg_url_pass(const char *url)
    const char *mg_url_uri(const char *url)
    size_t mg_base64_encode(const unsigned char *p, size_t n, char *buf, size_t)
    size_t mg_base64_decode(const char *src, size_t n, char *dst, size_t)

    ctypedef struct mg_md5_ctx:
        pass
    ctypedef struct mg_sha1_ctx:
        pass
    void mg_md5_init(mg_md5_ctx *c)
    void mg_md5_update(mg_md5_ctx *c, const unsigned char *data, size_t len)
    void mg_md5_final(mg_md5_ctx *c, unsigned char *digest)
    void mg_sha1_init(mg_sha1_ctx *)
    void mg_sha1_update(mg_sha1_ctx *, const unsigned char *data, size_t len)
    void mg_sha1_final(unsigned char *digest, mg_sha1_ctx *)
    void mg_sha256(uint8_t *dst, uint8_t *data, size_t datasz)
    void mg_hmac_sha256(uint8_t *dst, uint8_t *key, size_t keysz, uint8_t *data, size_t datasz)

    int mg_json_get(mg_str json, const char *path, int *toklen)
    mg_str mg_json_get_tok(mg_str json, const char *path)
    bint mg_json_get_num(mg_str json, const char *path, double *v)
    bint mg_json_get_bool(mg_str json, const char *path, bint *v)
    long mg_json_get_long(mg_str json, const char *path, long dflt)
    char *mg_json_get_str(mg_str json, const char *path)

    # HTTP extras
    struct mg_fs:
        pass
    struct mg_http_serve_opts:
        const char *root_dir
        const char *ssi_pattern
        const char *extra_headers
        const char *mime_types
        const char *page404
        mg_fs *fs
    struct mg_http_part:
        mg_str name
        mg_str filename
        mg_str body
    void mg_http_serve_dir(mg_connection *, mg_http_message *hm, const mg_http_serve_opts *)
    void mg_http_serve_file(mg_connection *, mg_http_message *hm, const char *path,
                            const mg_http_serve_opts *)
    mg_str mg_http_var(mg_str buf, mg_str name)
    int mg_http_get_var(const mg_str *, const char *name, char *, size_t)
    int mg_url_decode(const char *s, size_t n, char *to, size_t to_len, int form)
    size_t mg_url_encode(const char *s, size_t n, char *buf, size_t len)
    void mg_http_bauth(mg_connection *, const char *user, const char *passwd)
    mg_str mg_http_get_header_var(mg_str s, mg_str v)
    size_t mg_http_next_multipart(mg_str, size_t, mg_http_part *)
    mg_connection *mg_ws_connect(mg_mgr *, const char *url, mg_event_handler_t fn,
                                 void *fn_data, const char *fmt, ...)
    void mg_resolve(mg_connection *, const char *url)
    void mg_resolve_cancel(mg_connection *)

    # TLS
    struct mg_tls_opts:
        mg_str ca
        mg_str cert
        mg_str key
        mg_str name
        bint skip_verification
    void mg_tls_init(mg_connection *c, const mg_tls_opts *opts)
    void mg_tls_free(mg_connection *)


# The binding's OpenSSL glue for mongoose's TLS interface (tls_openssl.c): one shared
# SSL_CTX per TlsOpts. In a build on mongoose's built-in stack CYM_TLS_OPENSSL is 0.
cdef extern from "tls_openssl.h" nogil:
    enum:
        CYM_TLS_OPENSSL
        CYM_TLS_OK
        CYM_TLS_E_CA
        CYM_TLS_E_CERT
        CYM_TLS_E_KEY
        CYM_TLS_E_KEY_ENCRYPTED
        CYM_TLS_E_PASSWORD
        CYM_TLS_E_KEY_MISMATCH
        CYM_TLS_E_CIPHERS
        CYM_TLS_E_VERSION
        CYM_TLS_E_ALPN
        CYM_TLS_E_OOM
        CYM_TLS_E_UNSUPPORTED
    struct cym_tls_conf:
        mg_str ca
        mg_str cert
        mg_str key
        mg_str password
        const char *ciphers
        mg_str alpn
        int min_version
        int cert_reqs
    int cym_tls_ctx_new(const cym_tls_conf *conf, void **ctx, char *reason, size_t reason_len)
    void cym_tls_ctx_free(void *ctx)
    int cym_tls_ctx_use_default_ca(void *ctx, char *reason, size_t reason_len)
    void cym_tls_attach(mg_connection *c, void *ctx, const char *name, int verify)
    const char *cym_tls_library()
    int cym_tls_conn_info(mg_connection *c, int *version, int *cipher, long *verify)
    char *cym_tls_conn_cert(mg_connection *c, int which, size_t *len)
    char *cym_tls_peer_subject(mg_connection *c, size_t *len)
    const char *cym_tls_verify_error(long result)

    # SNTP
    mg_connection *mg_sntp_connect(mg_mgr *mgr, const char *url, mg_event_handler_t fn,
                                   void *fn_data)
    void mg_sntp_request(mg_connection *c)
    uint64_t mg_now()

    # MQTT
    enum:
        MQTT_PROP_TYPE_BYTE
        MQTT_PROP_TYPE_STRING
        MQTT_PROP_TYPE_STRING_PAIR
        MQTT_PROP_TYPE_BINARY_DATA
        MQTT_PROP_TYPE_VARIABLE_INT
        MQTT_PROP_TYPE_INT
        MQTT_PROP_TYPE_SHORT
    enum:
        MQTT_CMD_CONNECT
        MQTT_CMD_CONNACK
        MQTT_CMD_PUBLISH
        MQTT_CMD_PUBACK
        MQTT_CMD_PUBREC
        MQTT_CMD_PUBREL
        MQTT_CMD_PUBCOMP
        MQTT_CMD_SUBSCRIBE
        MQTT_CMD_SUBACK
        MQTT_CMD_UNSUBSCRIBE
        MQTT_CMD_UNSUBACK
        MQTT_CMD_PINGREQ
        MQTT_CMD_PINGRESP
        MQTT_CMD_DISCONNECT
    struct mg_mqtt_prop:
        uint8_t id
        uint32_t iv
        mg_str key
        mg_str val
    struct mg_mqtt_opts:
        mg_str user
        mg_str passwd "pass"
        mg_str client_id
        mg_str topic
        mg_str message
        uint8_t qos
        uint8_t version
        uint16_t keepalive
        uint16_t retransmit_id
        bint retain
        bint clean
        mg_mqtt_prop *props
        size_t num_props
        mg_mqtt_prop *will_props
        size_t num_will_props
    struct mg_mqtt_message:
        mg_str topic
        mg_str data
        mg_str dgram
        uint16_t id
        uint8_t cmd
        uint8_t qos
        uint8_t ack
        size_t props_start
        size_t props_size
    mg_connection *mg_mqtt_connect(mg_mgr *, const char *url, const mg_mqtt_opts *opts,
                                   mg_event_handler_t fn, void *fn_data)
    mg_connection *mg_mqtt_listen(mg_mgr *mgr, const char *url, mg_event_handler_t fn,
                                  void *fn_data)
    uint16_t mg_mqtt_pub(mg_connection *c, const mg_mqtt_opts *opts)
    void mg_mqtt_sub(mg_connection *, const mg_mqtt_opts *opts)
    void mg_mqtt_unsub(mg_connection *c, const mg_mqtt_opts *opts)
    void mg_mqtt_ping(mg_connection *)
    void mg_mqtt_pong(mg_connection *)
    void mg_mqtt_disconnect(mg_connection *, const mg_mqtt_opts *)
    void mg_mqtt_send_header(mg_connection *, uint8_t cmd, uint8_t flags, uint32_t len)
    size_t mg_mqtt_next_prop(mg_mqtt_message *, mg_mqtt_prop *, size_t ofs)
    uint64_t mg_boot_timestamp_ms


# Quiet connections (patches/0001-quiet-connections.patch, docs/design-scale.md): a
# connection with is_quiet set is visited by mg_mgr_poll() only when epoll reports it,
# while it has work pending, or after mg_attend(); others get MG_EV_POLL every
# iteration as in pristine mongoose.
cdef extern from *:
    """
    static inline void cym_set_quiet(struct mg_connection *c, int on) {
      c->is_quiet = on ? 1U : 0U;
    }
    static inline int cym_is_quiet(const struct mg_connection *c) { return c->is_quiet; }
    #if MG_ENABLE_EPOLL && !MG_ENABLE_FREERTOS_TCP
    #define CYM_WAIT_HOOK 1
    #else
    #define CYM_WAIT_HOOK 0
    #endif
    """
    enum: CYM_WAIT_HOOK  # the poll loop calls mg_mgr.wait_begin/wait_end (patch 0002)
    void mg_attend(mg_connection *c) nogil
    # mongoose's epoll interest update (a macro); patch 0005: EPOLLIN only while not is_full
    void MG_EPOLL_MOD(mg_connection *c, bint wr) nogil
    void cym_set_quiet(mg_connection *c, int on) nogil
    int cym_is_quiet(const mg_connection *c) nogil


cdef extern from "<sys/epoll.h>" nogil:
    union epoll_data_t "epoll_data":
        void *ptr
        int fd
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)


cdef extern from "<strings.h>" nogil:
    int strncasecmp(const char *s1, const char *s2, size_t n)
