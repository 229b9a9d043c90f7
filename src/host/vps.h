/* vps.h - host-side VPS helpers: the SSH proxy's task lookup */
#ifndef HR_HOST_VPS_H
#define HR_HOST_VPS_H

#include "host/host.h"
#include "host/ssh_proxy.h"

/* ssh_proxy_lookup_fn for struct host *ARG: where VPS task IDTEXT listens for SSH, or why
 * it cannot be reached (the 0.3 reasons). Runs on the loop thread. */
void vps_proxy_lookup (void *arg, const char *idtext, struct ssh_proxy_target *out);

#endif
