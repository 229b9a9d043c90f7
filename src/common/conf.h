/* conf.h - TOML configuration shared by every command (0.3 keys plus new ones).
 *
 * One table in conf.c lists every key: section, name, type, default, bounds and help.
 * It drives parsing, validation, `--dump-config` and the commented default file written
 * by `hakuriver.init config`. Unknown keys and bad values are errors naming file, line and key. */
#ifndef HR_COMMON_CONF_H
#define HR_COMMON_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

struct conf {
    char *path;                    /* file the values came from, NULL when defaults only */

    /* [network] */
    char *host_bind_ip;            /* "0.0.0.0" */
    int host_port;                 /* 8000 */
    int host_ssh_proxy_port;       /* 8002 */
    char *host_reachable_address;  /* "127.0.0.1": where runners and clients find the host */
    char *runner_address;          /* "127.0.1.1": reported by the runner (informational; the
                                      host never connects to runners for control) */
    int runner_port;               /* 8001: kept for 0.3 compatibility, unused by the C runner */

    /* [paths] */
    char *shared_dir;              /* "/var/lib/hakuriver/shared" */
    char *local_temp_dir;          /* "/var/lib/hakuriver/local" */
    char *numactl_path;            /* "": unused (NUMA binding is done with cgroups/mempolicy) */
    char *host_log_file;           /* "": empty = stderr */
    char *runner_log_file;         /* "": empty = stderr */
    char *runner_state_dir;        /* "": empty = <local_temp_dir>; runner identity and outbox */

    /* [database] */
    char *db_file;                 /* "/var/lib/hakuriver/hakuriver.db" */

    /* [timing] */
    int heartbeat_interval;        /* 5 (seconds) */
    int heartbeat_timeout_factor;  /* 6 */
    int cleanup_check_interval;    /* 10 (seconds) */
    int kill_grace_seconds;        /* 10: SIGTERM -> SIGKILL grace for kills */

    /* [environment] */
    char *runner_user;             /* "": empty = the user running the runner */
    bool allow_root_tasks;         /* false: refuse to run native tasks as root */

    /* [docker] */
    char *container_dir;           /* "hakuriver-containers" */
    char *default_container_name;  /* "hakuriver-base" */
    char *initial_base_image;      /* "python:3.12.10-alpine3.21" */
    bool tasks_privileged;         /* false */
    char **additional_mounts;      /* NULL-terminated list, may be empty */
    char *docker_socket;           /* "": $DOCKER_HOST (unix://) or /var/run/docker.sock */
    int pull_timeout;              /* 120 s: a registry pull that takes longer fails */
    bool create_default_environment; /* true: the host builds default_container_name from
                                        initial_base_image at start when it has no tarball */
    bool allow_privileged;         /* false: refuse tasks that ask for --privileged */

    /* [vps] (new) */
    int vps_ready_timeout;         /* 300 s from container start to the SSH banner */
    char *vps_publish_address;     /* "0.0.0.0": where runners publish VPS SSH ports */

    /* [auth] (new) */
    char *api_token;               /* "": empty = no auth (the host warns at start) */
    char *join_token;              /* "": token runners present; empty = api_token */

    /* [log] (new) */
    char *log_level;               /* "info" */
};

/* Fills CONF with defaults. Never fails. */
void conf_init_defaults (struct conf *conf);

/* Finds the config file: EXPLICIT if not NULL, else $HAKURIVER_CONFIG, else
 * ~/.hakuriver/config.toml if it exists. Returns a newly allocated path, or NULL when no
 * file applies (defaults only). An explicit or $HAKURIVER_CONFIG path that does not exist
 * is an error (returns NULL and sets *errp with code ENOENT). */
char *conf_find (const char *explicit_path, struct err *e);

/* Loads defaults, then the file at PATH (if not NULL), then the environment overrides for
 * secrets (HAKURIVER_TOKEN, HAKURIVER_JOIN_TOKEN). Returns 0, or -1 with e->text such as
 * "config.toml:12: [network] host_port: expected an integer between 1 and 65535". */
int conf_load (struct conf *conf, const char *path, struct err *e);

/* Releases every string the conf owns. Safe on a zeroed or already-freed conf. */
void conf_free (struct conf *conf);

/* Writes the effective configuration as TOML (secrets shown as "<set>"). */
void conf_dump (const struct conf *conf, FILE *out);

/* Writes a commented default configuration containing the given fresh tokens. */
void conf_write_default (FILE *out, const char *api_token, const char *join_token);

/* Parses a size like "512", "12K", "4M", "8G" (1000-based as in 0.3, case-insensitive;
 * "KiB/MiB/GiB" 1024-based also accepted). Returns 0 or -1 with e->text naming VALUE. */
int conf_parse_size (const char *value, int64_t *out, struct err *e);

/* Fills BUF (at least 65 bytes) with a 256-bit random token as 64 hex characters. */
int conf_random_token (char *buf, struct err *e);

#endif
