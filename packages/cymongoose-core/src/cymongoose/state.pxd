# The C state that the .pyx files share (included by _mongoose.pxd): one ConnState per
# connection, one ServerOpts per configured HTTP listener, and the core's own events.


cdef enum:
    # Events of the core's HTTP server (httpserver.pyx), numbered above mongoose's
    # MG_EV_USER range that programs use; Python sees them as EV_HTTP_BODY/EV_WRITABLE/
    # EV_REQUEST_LIMIT.
    _EV_HTTP_BODY = MG_EV_USER + 4096
    _EV_WRITABLE = MG_EV_USER + 4097
    _EV_REQUEST_LIMIT = MG_EV_USER + 4098
    # Inside the core only: EV_HTTP_BODY with the piece's bytes object as ev_data
    # (httpserver.pyx _srv_piece_deliver).
    _EV_HTTP_PIECE = MG_EV_USER + 4099


ctypedef struct ServerOpts:
    # Limits of Connection.configure_http_server, shared by a listener and the
    # connections it accepted; freed when the last of them goes.
    size_t max_header_count
    size_t max_header_bytes
    size_t max_body_size          # 0: unlimited
    size_t stream_threshold
    uint64_t keep_alive_timeout_ms
    uint64_t header_timeout_ms
    size_t max_connections        # 0: unlimited
    size_t ws_max_size            # 0: unlimited
    size_t connections            # accepted connections alive
    uint64_t requests             # requests delivered (MG_EV_HTTP_MSG) on its connections
    uint64_t request_limit        # EV_REQUEST_LIMIT to the listener at this count; 0: none
    mg_connection *listener       # NULL once the listener is released
    int refs
    # Default response headers (configure_http_server date_header/default_headers),
    # written by emit.pyx _emit and _srv_reject unless the response has its own field
    # of that name: Date from the per-second cache (emit.pyx), then ``defaults``,
    # "Name: value\r\n" lines (malloc'd), line i at default_off[i].
    int date_header
    char *defaults
    size_t defaults_len
    int default_count             # <= _MAX_DEFAULTS
    size_t default_off[16]
    size_t default_name_len[16]


ctypedef struct ConnState:
    # What mg_connection.fn_data points to (manager.pyx _new_state/_forget).
    mg_connection *c     # NULL until MG_EV_OPEN claims this state
    PyObject *conn       # owned reference to the Connection
    PyObject *mgr        # borrowed: the Manager outlives its connections
    int want_io
    # A Unix socket listener (Manager.listen(fd=AF_UNIX)): mongoose fills the addresses
    # of what it accepts as if they were IP ones, so they are zeroed at MG_EV_OPEN.
    int is_unix
    # The core's HTTP/1.1 server protocol (httpserver.pyx); srv is NULL elsewhere.
    ServerOpts *srv
    uint64_t last_io_ms
    uint64_t request_start_ms     # first byte of an incomplete request head, or 0
    int need_parse                # recv may hold a request not yet parsed
    int more_body                 # the HTTP_MSG being dispatched streams its body
    int body_mode                 # 0: none, 1: Content-Length, 2: chunked
    int chunk_state
    size_t body_left
    size_t body_total
    size_t decoded                # chunked: decoded bytes at the front of recv;
                                  # Content-Length: head bytes still before the body
    # A Content-Length body piece received straight into its bytes object (owned;
    # httpserver.pyx _srv_piece_start): while set, c.recv's memory is the object's and
    # mongoose's own receive buffer waits in saved_recv_buf/saved_recv_size.
    PyObject *piece
    unsigned char *saved_recv_buf
    size_t saved_recv_size
    int read_short                # the last read left room in recv (socket drained)
    int paused                    # 1: pause_reading(); 2: pipelined answers not taken
    int want_writable
    size_t low_water
    int resp_written              # the current request's response has begun
    int file_fd                   # Connection.send_file: read in C as the socket drains
    uint64_t file_left            # bytes still to queue; the fd is open while > 0
    uint64_t file_offset
    # Or a response body sent from its bytes object (httpserver.pyx _srv_body_by_ref):
    # an owned reference while file_left > 0, file_offset bytes of it sent or queued.
    PyObject *body_ref
    # Complete responses waiting for the end of the poll iteration (httpserver.pyx
    # _flush_later): a list through the manager's mg_mgr.userdata.
    ConnState *flush_next
    int flush_queued
    # What the core's HTTP server answered by itself (_srv_reject), for the servers'
    # access logs (Connection.refused): the status, and the refused request line
    # (malloc'd, freed with the state) when one had been received.
    int refused
    char *refused_line
    size_t refused_line_len
    # WebSocket permessage-deflate (wsdeflate.pyx) agreed on this connection: RSV1 is
    # then allowed on a message's first frame (_ws_frame_error) and _dispatch inflates;
    # ws_failed: such a message was refused (close sent), later frames are dropped.
    int ws_deflate
    int ws_failed
