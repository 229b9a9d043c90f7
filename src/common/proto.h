/* proto.h - wire constants shared by host, runner and CLI: paths, field names, statuses.
 * Spelled once here so that a JSON key or status string cannot drift between binaries.
 * The full protocol is described in docs/protocol.md. */
#ifndef HR_COMMON_PROTO_H
#define HR_COMMON_PROTO_H

/* Task statuses (0.3 names plus "queued"). */
#define ST_QUEUED     "queued"
#define ST_ASSIGNING  "assigning"
#define ST_PENDING    "pending"
#define ST_RUNNING    "running"
#define ST_PAUSED     "paused"
#define ST_COMPLETED  "completed"
#define ST_FAILED     "failed"
#define ST_KILLED     "killed"
#define ST_KILLED_OOM "killed_oom"
#define ST_LOST       "lost"

/* Node statuses. */
#define NODE_ONLINE  "online"
#define NODE_OFFLINE "offline"

/* HTTP paths (host). */
#define PATH_REGISTER     "/register"
#define PATH_HEARTBEAT    "/heartbeat/"   /* + hostname */
#define PATH_UPDATE       "/update"
#define PATH_RUNNER_POLL  "/runner/poll/" /* + hostname */
#define PATH_RUNNER_TERMINAL "/runner/terminal/" /* + session: a task terminal's runner end */
#define PATH_SUBMIT       "/submit"
#define PATH_STATUS       "/status/"      /* + task id */
#define PATH_TASKS        "/tasks"
#define PATH_KILL         "/kill/"        /* + task id */
#define PATH_KILL_BATCH   "/kill_batch/"  /* + batch id: every non-final task of the batch */
#define PATH_COMMAND      "/command/"     /* + task id + "/" + pause|resume */
#define PATH_NODES        "/nodes"
#define PATH_HEALTH       "/health"
#define PATH_TASK_LOG     "/task/"        /* + id + "/stdout" | "/stderr" */
#define PATH_TASK_TERMINAL "terminal"     /* PATH_TASK_LOG + id + "/terminal": task connect */
#define PATH_DOCKER_PREFIX "/docker/"     /* environment workflow (api_docker.c) */
#define PATH_VPS          "/vps"          /* every VPS task, newest first */
#define PATH_VPS_STATUS   "/vps/status"   /* the active ones (with ssh_port) */

/* VPS containers and the SSH proxy (docs/vps.md, docs/ssh-proxy.md). */
#define VPS_CONTAINER_PREFIX "hakuriver-vps-"
#define ENV_SSH_KEYS         "HAKURIVER_SSH_KEYS" /* the VPS's authorized keys, one per line */
/* The SSH proxy's lines (0.3 plus AUTH), each ended by "\n" on the wire. */
#define PROXY_AUTH           "AUTH "            /* + API token (optional without one) */
#define PROXY_REQUEST        "REQUEST_TUNNEL "  /* + task id */
#define PROXY_SUCCESS        "SUCCESS"
#define PROXY_ERROR          "ERROR "           /* + reason */

/* Container name meaning "run natively, no Docker". */
#define CONTAINER_NULL "NULL"

/* Shared-storage layout (relative to shared_dir). */
#define DIR_TASK_OUTPUTS "task_outputs"
#define DIR_TASK_ERRORS  "task_errors"
#define DIR_SHARED_DATA  "shared_data"

/* Environment variables set for every task. */
#define ENV_TASK_ID     "HAKURIVER_TASK_ID"
#define ENV_SHARED_DIR  "HAKURIVER_SHARED_DIR"
#define ENV_LOCAL_TEMP  "HAKURIVER_LOCAL_TEMP_DIR"
#define ENV_NUMA_NODE   "HAKURIVER_TARGET_NUMA_NODE"

/* Environment variables read by the CLI and runner for secrets (never argv). */
#define ENV_CONFIG      "HAKURIVER_CONFIG"
#define ENV_API_TOKEN   "HAKURIVER_TOKEN"
#define ENV_JOIN_TOKEN  "HAKURIVER_JOIN_TOKEN"

/* Limits on what the host accepts (see docs/protocol.md). */
#define MAX_BODY_BYTES    (4u << 20)  /* 4 MiB: a 10,000-task sweep fits easily */
#define MAX_HEADER_BYTES  (16u << 10) /* 16 KiB of request headers */

#endif
