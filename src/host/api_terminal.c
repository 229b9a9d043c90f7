/* api_terminal.c - WebSocket terminal into a host environment container. PLACEHOLDER:
 * being written; answers 501 until then. */
#include "host/api.h"

void api_terminal (struct host *h, struct http_req *req, const char *container)
{
    (void)h;
    (void)container;
    http_reply_error (req, 501, "The container terminal is not available yet");
}
