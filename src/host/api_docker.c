/* api_docker.c - the environment workflow under /docker/ (hakuriver.docker). PLACEHOLDER:
 * being written; answers 501 until then. */
#include "host/api.h"

void api_docker (struct host *h, struct http_req *req)
{
    (void)h;
    http_reply_error (req, 501, "The Docker environment workflow is not available yet");
}
