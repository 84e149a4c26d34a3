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
        unsigned is_listening
        unsigned is_client
        unsigned is_accepted
        unsigned is_tls
        unsigned is_udp
        unsigned is_websocket
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
    void mg_iobuf_del(mg_iobuf *, size_t offset, size_t len)
