// The benchmark routes in plain C on mongoose: the physical limit for the Python servers.
// Built by benchmarks/run.py into a temporary directory against the verified mongoose
// sources; never committed.  Usage: ./hello PORT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongoose.h"

#define BIG_SIZE (1024 * 1024)
static char *s_big;

static void send_body(struct mg_connection *c, const char *type, const void *buf, size_t len) {
  mg_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %lu\r\n\r\n", type,
            (unsigned long) len);
  mg_send(c, buf, len);
  c->is_resp = 0;  // response complete: mongoose may now parse the next request
}

static void handler(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    struct mg_http_message *hm = (struct mg_http_message *) ev_data;
    if (mg_match(hm->uri, mg_str("/echo"), NULL)) {
      send_body(c, "application/octet-stream", hm->body.buf, hm->body.len);
    } else if (mg_match(hm->uri, mg_str("/big"), NULL)) {
      send_body(c, "application/octet-stream", s_big, BIG_SIZE);
    } else if (mg_match(hm->uri, mg_str("/ws"), NULL)) {
      mg_ws_upgrade(c, hm, NULL);
    } else {
      send_body(c, "text/plain", "Hello, World!", 13);
    }
  } else if (ev == MG_EV_WS_MSG) {
    struct mg_ws_message *wm = (struct mg_ws_message *) ev_data;
    mg_ws_send(c, wm->data.buf, wm->data.len, WEBSOCKET_OP_TEXT);
  }
}

int main(int argc, char **argv) {
  char url[64];
  struct mg_mgr mgr;
  s_big = malloc(BIG_SIZE);
  memset(s_big, 'x', BIG_SIZE);
  snprintf(url, sizeof(url), "http://127.0.0.1:%s", argc > 1 ? argv[1] : "8000");
  mg_log_set(MG_LL_ERROR);
  mg_mgr_init(&mgr);
  if (mg_http_listen(&mgr, url, handler, NULL) == NULL) return 1;
  for (;;) mg_mgr_poll(&mgr, 1000);
  return 0;
}
