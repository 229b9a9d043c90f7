/* exec_docker.c - the Docker executor: a task runs as container hakuriver-task-<id>,
 * driven through the Docker Engine API by a per-task shim process that outlives the runner.
 *
 *   runner ──spawner──> shim (setsid, comm "hr-shim"; forked by the hr-spawner helper,
 *                             runner/spawner.h)
 *                      1. image: for an environment, load the newest tarball
 *                         <shared_dir>/<container_dir>/<env>-<ts>.tar when it is newer than
 *                         the local hakuriver/<env>:base (one load per image at a time: flock)
 *                         and prune the image it replaced; for --image, pull when missing
 *                      2. create + start the container (limits, mounts, labels)
 *                      3. follow its logs into the task's stdout/stderr files while it runs
 *                      4. inspect when the log stream ends (exit code, State.OOMKilled;
 *                         /wait first only if it still runs), remove
 *                      5. write <state_dir>/<id>-<attempt>.exit ("<code> <signal> <oom> D\n"
 *                         + message line), renamed into place
 *
 * The runner watches the shim through a pidfd exactly as for native tasks, so a restarted
 * runner re-attaches by pid. When the shim itself is gone but the container still exists
 * (found by name; its labels name the task, attempt and node), adopt() starts a new shim that
 * skips steps 1-2 and replays the logs from the start. Kill, pause and resume go straight to
 * the Engine API; a kill that arrives while the image is still loading leaves a cancel file
 * the shim checks before creating and after starting the container. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <poll.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/docker_api.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/tarballs.h"
#include "common/xalloc.h"
#include "runner/exec.h"
#include "runner/numa.h"
#include "runner/shim.h"
#include "runner/spawner.h"

/* Messages and paths are cut at their buffer size on purpose (snprintf). */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define CONTAINER_PREFIX "hakuriver-task-"
#define VPS_READY_POLL_MS 200          /* how often a starting VPS is checked */

/* What a VPS container runs (as `/bin/sh -c`): find or install sshd, install the keys from
 * $HAKURIVER_SSH_KEYS (the keys never pass through a shell as code), write a config of our
 * own and exec sshd in the foreground, logging to stderr (the task's stderr file). Written
 * so that it can run again on the same container (a node reboot starts it again). */
static const char VPS_SCRIPT[] =
    "set -e\n"
    "find_sshd() { for p in \"$(command -v sshd 2>/dev/null || true)\" /usr/sbin/sshd "
    "/usr/bin/sshd /sbin/sshd; do if [ -n \"$p\" ] && [ -x \"$p\" ]; then echo \"$p\"; "
    "return 0; fi; done; return 1; }\n"
    "if ! SSHD=$(find_sshd); then\n"
    "  echo 'hakuriver: the image has no sshd; installing openssh with its package manager' >&2\n"
    "  if command -v apk >/dev/null 2>&1; then apk add --no-cache openssh-server || apk add "
    "--no-cache openssh\n"
    "  elif command -v apt-get >/dev/null 2>&1; then apt-get update && "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server\n"
    "  elif command -v dnf >/dev/null 2>&1; then dnf install -y openssh-server\n"
    "  elif command -v yum >/dev/null 2>&1; then yum install -y openssh-server\n"
    "  elif command -v zypper >/dev/null 2>&1; then zypper --non-interactive install "
    "openssh-server\n"
    "  elif command -v pacman >/dev/null 2>&1; then pacman -Sy --noconfirm openssh\n"
    "  else echo 'hakuriver: the image has no sshd and no known package manager (apk, "
    "apt-get, dnf, yum, zypper, pacman): prepare an environment with openssh-server "
    "(docs/vps-images.md)' >&2; exit 97; fi\n"
    "  SSHD=$(find_sshd) || { echo 'hakuriver: openssh was installed but there is still no "
    "sshd' >&2; exit 97; }\n"
    "fi\n"
    "mkdir -p /etc/ssh /run/sshd /root/.ssh\n"
    "chmod 0755 /run/sshd\n"
    "chmod 700 /root/.ssh\n"
    "grep -q '^sshd:' /etc/passwd 2>/dev/null || echo 'sshd:x:74:65534:sshd:/run/sshd:/bin/false' "
    ">> /etc/passwd\n"
    "if [ -f /etc/shadow ]; then sed -i 's/^root:!*:/root:*:/' /etc/shadow 2>/dev/null || true; fi\n"
    "[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f "
    "/etc/ssh/ssh_host_ed25519_key\n"
    "umask 077\n"
    "printf '%s\\n' \"$HAKURIVER_SSH_KEYS\" > /root/.ssh/authorized_keys\n"
    "{ echo 'Port 22'\n"
    "  for k in /etc/ssh/ssh_host_*_key; do [ -f \"$k\" ] && echo \"HostKey $k\"; done\n"
    "  echo 'PermitRootLogin prohibit-password'\n"
    "  echo 'PasswordAuthentication no'\n"
    "  echo 'KbdInteractiveAuthentication no'\n"
    "  echo 'AuthorizedKeysFile .ssh/authorized_keys'\n"
    "  echo 'Subsystem sftp internal-sftp'\n"
    "  echo 'PrintLastLog no'\n"
    "  echo 'PidFile /run/sshd.pid'; } > /etc/ssh/hakuriver_sshd_config\n"
    "exec \"$SSHD\" -D -e -f /etc/ssh/hakuriver_sshd_config\n";
#define API_TIMEOUT_MS 30000L
#define START_FAILED_CODE 125          /* as `docker run` exits when it cannot start */

struct dockerx {
    struct exec_docker_conf conf;      /* strings owned */
    struct docker *d;                  /* the runner's own client: kill, pause, inspect */
    struct numa_topology topo;
    struct shim_exit_files done;       /* exit files to unlink after the runner committed */
};

/* ---- helpers --------------------------------------------------------------------------- */

static void exit_path (const struct dockerx *x, uint64_t id, int attempt, const char *ext,
                       char *buf, size_t size)
{
    snprintf (buf, size, "%s/%" PRIu64 "-%d.%s", x->conf.state_dir, id, attempt, ext);
}

static void lower (char *s)
{
    for (; *s; s++)
        *s = (char)tolower ((unsigned char)*s);
}

/* "HOST:CONTAINER[:ro|rw]" with absolute paths and no "..": Docker's Binds syntax. */
static bool mount_ok (const char *m)
{
    char buf[4096];
    if (strlen (m) >= sizeof buf)
        return false;
    strcpy (buf, m);
    char *host = buf, *cont = strchr (buf, ':');
    if (!cont)
        return false;
    *cont++ = '\0';
    char *opt = strchr (cont, ':');
    if (opt) {
        *opt++ = '\0';
        if (strcmp (opt, "ro") != 0 && strcmp (opt, "rw") != 0)
            return false;
    }
    if (host[0] != '/' || cont[0] != '/' || strstr (host, "/..") || strstr (cont, "/..")
        || strchr (cont, ','))
        return false;
    return true;
}

/* ---- what the shim needs, prepared in the runner before fork --------------------------- */

struct dlaunch {
    char name[96];                     /* container name */
    char *create_body;                 /* JSON for POST /containers/create; NULL = follow only */
    char *image;                       /* reference to run */
    char *environment;                 /* environment whose tarballs feed IMAGE, or NULL */
    char *tar_dir;
    char lock_path[4200];
    char loaded_path[4200];            /* "<ts> <image id>" of the last tarball loaded */
    char exit_path[4200], exit_tmp[4200], cancel_path[4200];
    int out_fd, err_fd;
    int started_fd;                    /* shim: written once the container has started */
    uint64_t task_id;
    int attempt;
    long pull_timeout_ms;
    const char *socket;
    bool vps;                          /* wait for the SSH banner before `running` */
    long ready_timeout_ms;
    char probe_ip[64];                 /* where the published SSH port is reached */
};

static void dlaunch_free (struct dlaunch *l)
{
    free (l->create_body);
    free (l->image);
    free (l->environment);
    free (l->tar_dir);
    if (l->out_fd >= 0)
        close (l->out_fd);
    if (l->err_fd >= 0)
        close (l->err_fd);
    if (l->started_fd >= 0)
        close (l->started_fd);
}

static int open_output (const char *path, struct err *e)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set (e, errno, "cannot open %s: %s", path, strerror (errno));
    return fd;
}

static int open_append (const char *path, struct err *e)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set (e, errno, "cannot open %s: %s", path, strerror (errno));
    return fd;
}

static json_t *build_create_body (struct dockerx *x, const struct exec_spec *s, struct err *e)
{
    json_t *cmd = json_array ();
    if (s->vps) {
        json_array_append_new (cmd, json_string ("/bin/sh"));
        json_array_append_new (cmd, json_string ("-c"));
        json_array_append_new (cmd, json_string (VPS_SCRIPT));
    } else {
        for (char **a = s->argv; *a; a++)
            json_array_append_new (cmd, json_string (*a));
    }
    json_t *env = json_array ();
    for (char **v = s->env; v && *v; v++)
        json_array_append_new (env, json_string (*v));
    char buf[4200];
    if (s->vps) {
        char *keys = xasprintf ("%s=%s", ENV_SSH_KEYS, s->ssh_keys ? s->ssh_keys : "");
        json_array_append_new (env, json_string (keys));
        free (keys);
    }
    snprintf (buf, sizeof buf, "%s=%" PRIu64, ENV_TASK_ID, s->task_id);
    json_array_append_new (env, json_string (buf));
    json_array_append_new (env, json_string (ENV_SHARED_DIR "=/shared"));
    json_array_append_new (env, json_string (ENV_LOCAL_TEMP "=/local_temp"));
    if (s->numa >= 0) {
        snprintf (buf, sizeof buf, "%s=%d", ENV_NUMA_NODE, s->numa);
        json_array_append_new (env, json_string (buf));
    }

    json_t *binds = json_array ();
    snprintf (buf, sizeof buf, "%s:/shared", s->workdir);
    json_array_append_new (binds, json_string (buf));
    snprintf (buf, sizeof buf, "%s:/local_temp", s->local_temp_dir);
    json_array_append_new (binds, json_string (buf));
    for (char **m = s->mounts; m && *m; m++) {
        if (!mount_ok (*m)) {
            char esc[256];
            err_set (e, EINVAL, "invalid mount `%s`: expected HOST_PATH:CONTAINER_PATH[:ro|rw] "
                     "with absolute paths", log_escape (*m, esc, sizeof esc));
            json_decref (cmd);
            json_decref (env);
            json_decref (binds);
            return NULL;
        }
        json_array_append_new (binds, json_string (*m));
    }

    json_t *hc = json_object ();
    json_object_set_new (hc, "Binds", binds);
    if (s->vps) {
        /* Its own network namespace (sshd on port 22 inside), the port published on an
         * ephemeral host port. No restart policy: the runner starts it again when it comes
         * back after a reboot (docker_adopt), so a VPS whose sshd ends is over. */
        json_t *binding = json_object ();
        json_object_set_new (binding, "HostIp", json_string (s->publish_ip && *s->publish_ip
                                                                 ? s->publish_ip
                                                                 : "0.0.0.0"));
        json_object_set_new (binding, "HostPort", json_string (""));
        json_t *pb = json_object ();
        json_object_set_new (pb, "22/tcp", json_pack ("[o]", binding));
        json_object_set_new (hc, "PortBindings", pb);
    } else {
        json_object_set_new (hc, "NetworkMode", json_string ("host"));
    }
    if (s->cores > 0)
        json_object_set_new (hc, "NanoCpus", json_integer ((json_int_t)s->cores * 1000000000));
    if (s->memory_bytes > 0) {
        json_object_set_new (hc, "Memory", json_integer (s->memory_bytes));
        json_object_set_new (hc, "MemorySwap", json_integer (s->memory_bytes)); /* no swap */
    }
    if (s->numa >= 0) {
        const struct numa_node *node = numa_topology_find (&x->topo, s->numa);
        char cpus[4096];
        if (!node || node->ncpus == 0
            || numa_format_cpulist (node->cpus, node->ncpus, cpus, sizeof cpus, e) < 0) {
            if (!e->text[0])
                err_set (e, EINVAL, "NUMA node %d does not exist on this runner", s->numa);
            json_decref (cmd);
            json_decref (env);
            json_decref (hc);
            return NULL;
        }
        json_object_set_new (hc, "CpusetCpus", json_string (cpus));
        snprintf (buf, sizeof buf, "%d", s->numa);
        json_object_set_new (hc, "CpusetMems", json_string (buf));
    }
    if (s->ngpus > 0) {
        json_t *ids = json_array ();
        for (int i = 0; i < s->ngpus; i++) {
            snprintf (buf, sizeof buf, "%d", s->gpus[i]);
            json_array_append_new (ids, json_string (buf));
        }
        json_t *req = json_object ();
        json_object_set_new (req, "Driver", json_string ("nvidia"));
        json_object_set_new (req, "DeviceIDs", ids);
        json_object_set_new (req, "Capabilities", json_pack ("[[s]]", "gpu"));
        json_object_set_new (hc, "DeviceRequests", json_pack ("[o]", req));
    }
    if (s->privileged)
        json_object_set_new (hc, "Privileged", json_true ());
    else
        json_object_set_new (hc, "CapAdd", json_pack ("[s]", "SYS_NICE"));

    json_t *labels = json_object ();
    snprintf (buf, sizeof buf, "%" PRIu64, s->task_id);
    json_object_set_new (labels, "hakuriver.task_id", json_string (buf));
    snprintf (buf, sizeof buf, "%d", s->attempt);
    json_object_set_new (labels, "hakuriver.attempt", json_string (buf));
    json_object_set_new (labels, "hakuriver.node_id", json_string (x->conf.node_id));
    json_object_set_new (labels, "hakuriver.node", json_string (x->conf.hostname));
    json_object_set_new (labels, "hakuriver.shared_dir", json_string (s->shared_dir));
    json_object_set_new (labels, "hakuriver.task_type", json_string (s->vps ? "vps" : "command"));

    json_t *body = json_object ();
    json_object_set_new (body, "Image", json_string (s->image));
    json_object_set_new (body, "Cmd", cmd);
    json_object_set_new (body, "Env", env);
    json_object_set_new (body, "WorkingDir", json_string ("/shared"));
    json_object_set_new (body, "Labels", labels);
    json_object_set_new (body, "HostConfig", hc);
    if (s->vps) {
        json_object_set_new (body, "ExposedPorts", json_pack ("{s:{}}", "22/tcp"));
        snprintf (buf, sizeof buf, "vps-%" PRIu64, s->task_id);
        json_object_set_new (body, "Hostname", json_string (buf));
    }
    return body;
}

static void launch_paths (struct dockerx *x, uint64_t id, int attempt, bool vps,
                          struct dlaunch *l)
{
    snprintf (l->name, sizeof l->name, "%s%" PRIu64, vps ? VPS_CONTAINER_PREFIX : CONTAINER_PREFIX,
              id);
    l->vps = vps;
    exit_path (x, id, attempt, "exit", l->exit_path, sizeof l->exit_path);
    exit_path (x, id, attempt, "exit.tmp", l->exit_tmp, sizeof l->exit_tmp);
    exit_path (x, id, attempt, "cancel", l->cancel_path, sizeof l->cancel_path);
    l->task_id = id;
    l->attempt = attempt;
    l->socket = x->conf.socket;
    l->pull_timeout_ms = (long)x->conf.pull_timeout * 1000;
}

/* ---- the shim ---------------------------------------------------------------------------- */

static void shim_record (const struct dlaunch *l, int code, int sig, bool oom, const char *msg)
{
    char head[64];
    int len = snprintf (head, sizeof head, "%d %d %d D\n", code, sig, oom ? 1 : 0);
    int fd = open (l->exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    shim_write_all (fd, head, (size_t)len);
    if (msg && *msg) {
        /* one line */
        for (const char *p = msg; *p; p++) {
            char c = (*p == '\n' || *p == '\r') ? ' ' : *p;
            shim_write_all (fd, &c, 1);
        }
        shim_write_all (fd, "\n", 1);
    }
    close (fd);
    rename (l->exit_tmp, l->exit_path);
}

static bool cancelled (const struct dlaunch *l)
{
    return access (l->cancel_path, F_OK) == 0;
}

/* Local image REF: *created (seconds) and ID. Returns 1 present, 0 absent, -1 error. */
static int image_info (struct docker *d, const char *ref, double *created, char *id, size_t idn,
                       struct err *e)
{
    char *esc = docker_escape (ref);
    char path[600];
    snprintf (path, sizeof path, "/images/%s/json", esc);
    free (esc);
    json_t *j = NULL;
    int code = docker_request (d, "GET", path, NULL, &j, API_TIMEOUT_MS, e);
    if (code == 404) {
        json_decref (j);
        return 0;
    }
    if (code < 0 || code >= 400) {
        json_decref (j);
        return -1;
    }
    const char *c = json_string_value (json_object_get (j, "Created"));
    const char *i = json_string_value (json_object_get (j, "Id"));
    *created = 0;
    if (c)
        (void)docker_parse_time (c, created);
    snprintf (id, idn, "%s", i ? i : "");
    json_decref (j);
    return 1;
}

/* Makes l->image available for an environment (tarball sync). Returns 0 or -1 with MSG. */
static int ensure_environment (struct docker *d, const struct dlaunch *l, char *msg, size_t mn)
{
    struct err e = { 0 };
    int lock = open (l->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock (lock, LOCK_EX) < 0) {
        snprintf (msg, mn, "cannot lock %s: %s", l->lock_path, strerror (errno));
        if (lock >= 0)
            close (lock);
        return -1;
    }
    int rc = -1;
    double created = 0;
    char id[160] = "";
    int have = image_info (d, l->image, &created, id, sizeof id, &e);
    if (have < 0) {
        snprintf (msg, mn, "cannot inspect image %s: %s", l->image, e.text);
        goto out;
    }
    /* The tarball this image was loaded from, when we loaded it: its name's timestamp may
     * be newer than the image's own Created time (a tarball saved from an older image). */
    if (have) {
        FILE *f = fopen (l->loaded_path, "re");
        long long lts;
        char lid[160];
        if (f) {
            if (fscanf (f, "%lld %159s", &lts, lid) == 2 && strcmp (lid, id) == 0
                && (double)lts > created)
                created = (double)lts;
            fclose (f);
        }
    }
    int64_t ts = 0;
    char tar[4400];
    int found = tarballs_newest (l->tar_dir, l->environment, &ts, tar, sizeof tar);
    if (!found && !have) {
        snprintf (msg, mn, "environment `%s` is not available: no image %s on this runner and "
                  "no tarball %s/%s-<timestamp>.tar (create it on the host with "
                  "`hakuriver.docker create-tar %s`)", l->environment, l->image, l->tar_dir,
                  l->environment, l->environment);
        goto out;
    }
    if (!found || (have && (double)ts <= created)) {
        rc = 0;   /* up to date */
        goto out;
    }
    int fd = open (tar, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (msg, mn, "cannot open %s: %s", tar, strerror (errno));
        goto out;
    }
    log_info ("task %" PRIu64 ".%d: loading %s into %s", l->task_id, l->attempt, tar, l->image);
    int up = docker_upload (d, "/images/load?quiet=1", fd, NULL, 0, &e);
    close (fd);
    if (up < 0) {
        snprintf (msg, mn, "cannot load image from %s: %s", tar, e.text);
        goto out;
    }
    double ncreated = 0;
    char nid[160] = "";
    e = (struct err){ 0 };
    if (image_info (d, l->image, &ncreated, nid, sizeof nid, &e) != 1) {
        snprintf (msg, mn, "tarball %s did not provide image %s%s%s", tar, l->image,
                  e.text[0] ? ": " : "", e.text);
        goto out;
    }
    char tmp[4300];
    snprintf (tmp, sizeof tmp, "%s.tmp", l->loaded_path);
    FILE *f = fopen (tmp, "we");
    if (f) {
        fprintf (f, "%" PRId64 " %s\n", ts, nid);
        if (fclose (f) == 0)
            rename (tmp, l->loaded_path);
    }
    /* The replaced image: removed unless a container still uses it (then the engine says
     * 409 and it goes with a later load). */
    if (have && id[0] && strcmp (id, nid) != 0) {
        char path[300];
        snprintf (path, sizeof path, "/images/%s", id);
        e = (struct err){ 0 };
        int code = docker_request (d, "DELETE", path, NULL, NULL, API_TIMEOUT_MS, &e);
        if (code >= 200 && code < 300)
            log_info ("pruned the previous image of environment %s (%.19s)", l->environment,
                      id);
        else
            log_info ("kept the previous image of environment %s (%.19s): %s", l->environment,
                      id, e.text);
    }
    rc = 0;
out:
    close (lock);
    return rc;
}

/* Makes a plain image reference available (pull when missing). Returns 0 or -1 with MSG. */
static int ensure_image (struct docker *d, const struct dlaunch *l, char *msg, size_t mn)
{
    struct err e = { 0 };
    double created;
    char id[160];
    int have = image_info (d, l->image, &created, id, sizeof id, &e);
    if (have == 1)
        return 0;
    if (have < 0) {
        snprintf (msg, mn, "cannot inspect image %s: %s", l->image, e.text);
        return -1;
    }
    char *esc = docker_escape (l->image);
    char path[700];
    /* fromImage may carry the tag ("busybox:1.36"); without one the engine pulls all tags,
     * so ask for latest explicitly. */
    const char *slash = strrchr (l->image, '/');
    bool tagged = strchr (slash ? slash : l->image, ':') || strchr (l->image, '@');
    snprintf (path, sizeof path, "/images/create?fromImage=%s%s", esc, tagged ? "" : "&tag=latest");
    free (esc);
    json_t *j = NULL;
    e = (struct err){ 0 };
    int code = docker_request (d, "POST", path, NULL, &j, l->pull_timeout_ms, &e);
    json_decref (j);
    if (code < 0 || code >= 400) {
        snprintf (msg, mn, "image %s is not on this runner and cannot be pulled: %s", l->image,
                  e.text);
        return -1;
    }
    e = (struct err){ 0 };
    if (image_info (d, l->image, &created, id, sizeof id, &e) != 1) {
        snprintf (msg, mn, "image %s is not on this runner and the pull did not provide it%s%s",
                  l->image, e.text[0] ? ": " : "", e.text);
        return -1;
    }
    return 0;
}

struct log_sink {
    struct docker_demux demux;
    int out_fd, err_fd;
};

static int log_frame (int stream, const char *data, size_t len, void *arg)
{
    struct log_sink *s = arg;
    shim_write_all (stream == 2 ? s->err_fd : s->out_fd, data, len);
    return 0;
}

static int log_chunk (const char *data, size_t len, void *arg)
{
    struct log_sink *s = arg;
    return docker_demux_feed (&s->demux, data, len, log_frame, s);
}

static int container_path (char *buf, size_t n, const char *name, const char *suffix)
{
    return snprintf (buf, n, "/containers/%s%s", name, suffix);
}

/* Removes a container left by an older attempt of this task. Returns 1 if it is ours
 * (same attempt: follow it), 0 when removed, -1 on error. */
static int stale_container (struct docker *d, const struct dlaunch *l, struct err *e)
{
    char path[256];
    container_path (path, sizeof path, l->name, "/json");
    json_t *j = NULL;
    int code = docker_request (d, "GET", path, NULL, &j, API_TIMEOUT_MS, e);
    if (code < 0 || code >= 400) {
        json_decref (j);
        return -1;
    }
    const char *at = json_string_value (
        json_object_get (json_object_get (json_object_get (j, "Config"), "Labels"),
                         "hakuriver.attempt"));
    bool same = at && atoi (at) == l->attempt;
    json_decref (j);
    if (same)
        return 1;
    container_path (path, sizeof path, l->name, "?force=1");
    code = docker_request (d, "DELETE", path, NULL, NULL, API_TIMEOUT_MS, e);
    return code >= 200 && code < 300 ? 0 : -1;
}

/* Whether the image can be used without asking the engine first (see run_shim). */
static bool image_probably_current (const struct dlaunch *l)
{
    if (!l->environment)
        return true;
    int64_t ts;
    char tar[4400], lid[160];
    if (!tarballs_newest (l->tar_dir, l->environment, &ts, tar, sizeof tar))
        return false;
    long long lts;
    FILE *f = fopen (l->loaded_path, "re");
    bool ok = f && fscanf (f, "%lld %159s", &lts, lid) == 2 && lts >= ts;
    if (f)
        fclose (f);
    return ok;
}

/* Makes the image available; on failure records the result. Returns true when it failed. */
static bool ensure_or_record (struct docker *d, const struct dlaunch *l)
{
    char msg[1024] = "";
    int rc = l->environment ? ensure_environment (d, l, msg, sizeof msg)
                            : ensure_image (d, l, msg, sizeof msg);
    if (rc < 0)
        shim_record (l, START_FAILED_CODE, 0, false, msg);
    return rc < 0;
}

static int64_t mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define TAIL_MAX 600

static int frame_to_buf (int stream, const char *data, size_t len, void *arg)
{
    (void)stream;
    char *buf = arg;
    size_t have = strlen (buf), room = TAIL_MAX - have - 1;
    if (len > room) {
        /* keep the end: the last lines say why */
        size_t drop = len - room < have ? len - room : have;
        memmove (buf, buf + drop, have - drop + 1);
        have -= drop;
        room = TAIL_MAX - have - 1;
    }
    size_t n = len < room ? len : room;
    memcpy (buf + have, data + (len - n), n);
    buf[have + n] = '\0';
    return 0;
}

struct tail_sink {
    struct docker_demux demux;
    char text[TAIL_MAX];
};

static int tail_chunk (const char *data, size_t len, void *arg)
{
    struct tail_sink *t = arg;
    return docker_demux_feed (&t->demux, data, len, frame_to_buf, t->text);
}

/* The container's last output lines, as one line, into OUT. */
static void output_tail (struct docker *d, const char *name, char *out, size_t n)
{
    struct tail_sink t = { 0 };
    char path[300];
    container_path (path, sizeof path, name, "/logs?stdout=1&stderr=1&tail=5");
    struct err e = { 0 };
    docker_stream (d, "GET", path, tail_chunk, &t, API_TIMEOUT_MS, &e);
    for (char *p = t.text; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t len = strlen (t.text);
    while (len && t.text[len - 1] == ' ')
        t.text[--len] = '\0';
    snprintf (out, n, "%s", t.text);
}

/* Whether an SSH server answers on IP:PORT: connects and reads its banner ("SSH-"). */
static bool ssh_banner (const char *ip, int port)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t sl;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton (AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t)port);
        sl = sizeof *v4;
    } else if (inet_pton (AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t)port);
        sl = sizeof *v6;
    } else {
        return false;
    }
    int fd = socket (ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    bool ok = false;
    char buf[256];
    size_t got = 0;
    int64_t deadline = mono_ms () + 2000;
    if (connect (fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
        goto out;
    while (got < 4) {
        int64_t left = deadline - mono_ms ();
        if (left <= 0)
            goto out;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll (&p, 1, (int)left) <= 0)
            goto out;
        ssize_t r = recv (fd, buf + got, sizeof buf - got, 0);
        if (r <= 0)
            goto out;   /* refused, or the port is published but nothing listens yet */
        got += (size_t)r;
    }
    ok = memcmp (buf, "SSH-", 4) == 0;
out:
    close (fd);
    return ok;
}

/* The host port the container publishes for 22/tcp, 0 when none (yet). */
static int published_port (json_t *inspect)
{
    json_t *ports = json_object_get (json_object_get (json_object_get (inspect,
                                                                       "NetworkSettings"),
                                                      "Ports"),
                                     "22/tcp");
    size_t i;
    json_t *b;
    json_array_foreach (ports, i, b)
    {
        const char *hp = json_string_value (json_object_get (b, "HostPort"));
        if (hp && atoi (hp) > 0 && atoi (hp) < 65536)
            return atoi (hp);
    }
    return 0;
}

/* A VPS is `running` once its SSH server answers. Waits for that; returns the port, or -1
 * with MSG saying why not (the container ended, or the time ran out). */
static int vps_wait_ready (struct docker *d, const struct dlaunch *l, char *msg, size_t mn)
{
    int64_t start = mono_ms (), deadline = start + l->ready_timeout_ms;
    char path[300], tail[TAIL_MAX];
    container_path (path, sizeof path, l->name, "/json");
    for (;;) {
        if (cancelled (l)) {
            snprintf (msg, mn, "Killed before the VPS became reachable.");
            return -1;
        }
        json_t *j = NULL;
        struct err e = { 0 };
        int code = docker_request (d, "GET", path, NULL, &j, API_TIMEOUT_MS, &e);
        if (code == 404) {
            json_decref (j);
            snprintf (msg, mn, "the VPS container %s disappeared during setup", l->name);
            return -1;
        }
        json_t *state = json_object_get (j, "State");
        if (code >= 200 && code < 300 && !json_is_true (json_object_get (state, "Running"))) {
            json_int_t ec = json_integer_value (json_object_get (state, "ExitCode"));
            json_decref (j);
            output_tail (d, l->name, tail, sizeof tail);
            snprintf (msg, mn, "VPS setup failed: the container exited with code %d before its "
                      "SSH server answered%s%s", (int)ec, tail[0] ? "; last output: " : "",
                      tail);
            return -1;
        }
        int port = code >= 200 && code < 300 ? published_port (j) : 0;
        json_decref (j);
        if (port > 0 && ssh_banner (l->probe_ip, port)) {
            log_info ("task %" PRIu64 ".%d: VPS SSH server answers on port %d after %.1f s",
                      l->task_id, l->attempt, port, (double)(mono_ms () - start) / 1000);
            return port;
        }
        if (mono_ms () >= deadline) {
            output_tail (d, l->name, tail, sizeof tail);
            snprintf (msg, mn, "VPS setup failed: its SSH server did not answer within %ld s "
                      "([vps] ready_timeout)%s%s", l->ready_timeout_ms / 1000,
                      tail[0] ? "; last output: " : "", tail);
            return -1;
        }
        struct timespec ts = { 0, VPS_READY_POLL_MS * 1000000L };
        nanosleep (&ts, NULL);
    }
}

static _Noreturn void run_shim (struct dlaunch *l)
{
    setsid ();
    prctl (PR_SET_NAME, SHIM_COMM, 0, 0, 0);
    signal (SIGPIPE, SIG_IGN);
    signal (SIGHUP, SIG_IGN);
    signal (SIGINT, SIG_IGN);
    signal (SIGTERM, SIG_IGN);
    /* Keep stdin/stdout/stderr (the runner's log), the two output files and the start pipe. */
    int keep[3] = { l->out_fd, l->err_fd, l->started_fd };
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    unsigned from = 3;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < 0)
            continue;
        if ((unsigned)keep[i] > from)
            syscall (SYS_close_range, from, (unsigned)keep[i] - 1, 0);
        if ((unsigned)keep[i] + 1 > from)
            from = (unsigned)keep[i] + 1;
    }
    syscall (SYS_close_range, from, ~0U, 0);

    char msg[1024] = "";
    struct err e = { 0 };
    log_debug ("task %" PRIu64 ".%d: shim up", l->task_id, l->attempt);
    struct docker *d = docker_open (l->socket, &e);
    if (!d) {
        shim_record (l, START_FAILED_CODE, 0, false, e.text);
        _exit (0);
    }
    char path[512];
    if (l->create_body) {
        /* The image is checked with the engine only when it may be stale or missing: an
         * environment whose newest tarball this runner has not loaded yet, or a create that
         * answers 404 (no such image). */
        bool ensured = !image_probably_current (l);
        if (ensured && ensure_or_record (d, l))
            _exit (0);
        if (cancelled (l)) {
            shim_record (l, 128 + SIGKILL, SIGKILL, false, "Killed before the container started.");
            _exit (0);
        }
        json_t *body = json_loads (l->create_body, 0, NULL);
        snprintf (path, sizeof path, "/containers/create?name=%s", l->name);
        log_debug ("task %" PRIu64 ".%d: creating the container", l->task_id, l->attempt);
        bool follow = false;
        for (int tries = 0; tries < 3; tries++) {
            e = (struct err){ 0 };
            int code = docker_request (d, "POST", path, body, NULL, API_TIMEOUT_MS, &e);
            if (code == 409) {
                int st = stale_container (d, l, &e);
                if (st == 1) {
                    follow = true;   /* this attempt's container already exists */
                    break;
                }
                if (st == 0)
                    continue;
            }
            if (code == 404 && !ensured) {
                ensured = true;
                if (ensure_or_record (d, l)) {
                    json_decref (body);
                    _exit (0);
                }
                continue;
            }
            if (code >= 200 && code < 300)
                break;
            json_decref (body);
            snprintf (msg, sizeof msg, "cannot create container %s: %s", l->name, e.text);
            shim_record (l, START_FAILED_CODE, 0, false, msg);
            _exit (0);
        }
        json_decref (body);
        if (!follow) {
            container_path (path, sizeof path, l->name, "/start");
            e = (struct err){ 0 };
            int code = docker_request (d, "POST", path, NULL, NULL, API_TIMEOUT_MS, &e);
            if (code < 0 || (code >= 400 && code != 304)) {
                snprintf (msg, sizeof msg, "cannot start container %s: %s", l->name, e.text);
                container_path (path, sizeof path, l->name, "?force=1");
                struct err ig = { 0 };
                docker_request (d, "DELETE", path, NULL, NULL, API_TIMEOUT_MS, &ig);
                shim_record (l, START_FAILED_CODE, 0, false, msg);
                _exit (0);
            }
        }
        if (cancelled (l)) {
            container_path (path, sizeof path, l->name, "/kill?signal=SIGKILL");
            struct err ig = { 0 };
            docker_request (d, "POST", path, NULL, NULL, API_TIMEOUT_MS, &ig);
        }
    }
    if (l->vps) {
        int port = vps_wait_ready (d, l, msg, sizeof msg);
        if (port < 0) {
            container_path (path, sizeof path, l->name, "?force=1&v=1");
            struct err ig = { 0 };
            docker_request (d, "DELETE", path, NULL, NULL, API_TIMEOUT_MS, &ig);
            docker_close (d);
            bool killed = cancelled (l);
            shim_record (l, killed ? 128 + SIGKILL : START_FAILED_CODE, killed ? SIGKILL : 0,
                         false, msg);
            unlink (l->cancel_path);
            _exit (0);
        }
        if (l->started_fd >= 0) {
            char line[32];
            int n = snprintf (line, sizeof line, "s %d\n", port);
            shim_write_all (l->started_fd, line, (size_t)n);   /* `running` with the port */
            close (l->started_fd);
            l->started_fd = -1;
        }
    }
    if (l->started_fd >= 0) {
        shim_write_all (l->started_fd, "s", 1);   /* the runner reports `running` now */
        close (l->started_fd);
        l->started_fd = -1;
    }

    /* Logs: from the start (a re-attaching shim rewrites the files from the beginning)
     * until the container stops. */
    struct log_sink sink = { .out_fd = l->out_fd, .err_fd = l->err_fd };
    if (l->vps && !l->create_body) {
        /* following a VPS again: its files keep what they have, so only what comes now */
        char q[96];
        snprintf (q, sizeof q, "/logs?follow=1&stdout=1&stderr=1&since=%lld",
                  (long long)time (NULL));
        container_path (path, sizeof path, l->name, q);
    } else {
        container_path (path, sizeof path, l->name, "/logs?follow=1&stdout=1&stderr=1");
    }
    e = (struct err){ 0 };
    int lc = docker_stream (d, "GET", path, log_chunk, &sink, 0, &e);
    if (lc < 0 || lc >= 400)
        log_warn ("task %" PRIu64 ".%d: cannot follow the logs of %s: %s", l->task_id,
                  l->attempt, l->name, e.text);

    /* A followed log stream ends when the container stops, so one inspect then gives the
     * exit code and the OOM verdict. /wait only when the stream broke off early or the
     * container still runs (one engine call less per task than wait + inspect). */
    bool need_wait = lc < 0 || lc >= 400;
    int code = -1;
    bool oom = false;
    for (int round = 0; round < 2; round++) {
        json_t *j = NULL;
        if (need_wait) {
            container_path (path, sizeof path, l->name, "/wait");
            e = (struct err){ 0 };
            int wc = docker_request (d, "POST", path, NULL, &j, 0, &e);
            if (wc >= 200 && wc < 300 && json_is_integer (json_object_get (j, "StatusCode")))
                code = (int)json_integer_value (json_object_get (j, "StatusCode"));
            json_decref (j);
            j = NULL;
        }
        container_path (path, sizeof path, l->name, "/json");
        e = (struct err){ 0 };
        int ic = docker_request (d, "GET", path, NULL, &j, API_TIMEOUT_MS, &e);
        json_t *state = json_object_get (j, "State");
        if (ic >= 200 && ic < 300 && !need_wait
            && (json_is_true (json_object_get (state, "Running"))
                || json_is_true (json_object_get (state, "Paused")))) {
            json_decref (j);
            need_wait = true;       /* the stream ended but the container did not */
            continue;
        }
        if (ic >= 200 && ic < 300) {
            oom = json_is_true (json_object_get (state, "OOMKilled"));
            if (json_is_integer (json_object_get (state, "ExitCode")))
                code = (int)json_integer_value (json_object_get (state, "ExitCode"));
            const char *err = json_string_value (json_object_get (state, "Error"));
            if (err && *err)
                snprintf (msg, sizeof msg, "%s", err);
        } else if (code < 0) {
            snprintf (msg, sizeof msg, "lost track of container %s: %s", l->name, e.text);
        }
        json_decref (j);
        break;
    }
    container_path (path, sizeof path, l->name, "?force=1&v=1");
    struct err ig = { 0 };
    docker_request (d, "DELETE", path, NULL, NULL, API_TIMEOUT_MS, &ig);
    docker_close (d);
    int sig = code > 128 && code < 128 + 65 ? code - 128 : 0;
    shim_record (l, code, sig, oom, msg);
    unlink (l->cancel_path);
    _exit (0);
}

/* The spawner's handler (see spawner.h): MSG is what spawn_shim packed. */
static int docker_spawn_kind = -1;

static void docker_shim_main (char *msg, size_t len, const int *fds, int nfds)
{
    struct spawn_reader r = { .p = msg, .left = len };
    struct dlaunch l;
    spawn_read (&r, &l, sizeof l);
    l.create_body = (char *)spawn_read_str (&r);
    l.image = (char *)spawn_read_str (&r);
    l.environment = (char *)spawn_read_str (&r);
    l.tar_dir = (char *)spawn_read_str (&r);
    l.socket = spawn_read_str (&r);
    if (r.bad || nfds != 3)
        _exit (127);
    l.out_fd = fds[0];
    l.err_fd = fds[1];
    l.started_fd = fds[2];
    run_shim (&l);
}

/* Starts the shim for L through the spawner. Returns its pid (and a pidfd for it in
 * *PIDFD, or -1) or -1. */
static pid_t spawn_shim (struct dlaunch *l, int *pidfd, struct err *e)
{
    unlink (l->exit_path);
    struct spawn_msg m = { 0 };
    spawn_msg_put (&m, l, sizeof *l);
    spawn_msg_put_str (&m, l->create_body);
    spawn_msg_put_str (&m, l->image);
    spawn_msg_put_str (&m, l->environment);
    spawn_msg_put_str (&m, l->tar_dir);
    spawn_msg_put_str (&m, l->socket);
    int fds[3] = { l->out_fd, l->err_fd, l->started_fd };
    pid_t pid = spawner_spawn (docker_spawn_kind, m.buf, m.len, fds, 3, pidfd, e);
    spawn_msg_free (&m);
    return pid;
}

/* ---- executor operations --------------------------------------------------------------- */

/* The VPS settings of a launch: how long to wait for sshd, and where to knock. */
static void vps_launch (struct dlaunch *l, const struct exec_spec *s)
{
    l->ready_timeout_ms = (long)(s->ready_timeout > 0 ? s->ready_timeout : 300) * 1000;
    const char *ip = s->publish_ip && *s->publish_ip ? s->publish_ip : "0.0.0.0";
    if (strcmp (ip, "0.0.0.0") == 0)
        ip = "127.0.0.1";
    else if (strcmp (ip, "::") == 0)
        ip = "::1";
    snprintf (l->probe_ip, sizeof l->probe_ip, "%s", ip);
}

static int docker_start (struct executor *ex, const struct exec_spec *s, struct exec_task *out,
                         struct err *e)
{
    struct dockerx *x = ex->impl;
    if (s->vps && (!s->argv || !s->argv[0])) {
        /* a VPS runs VPS_SCRIPT; argv is only used for messages */
    } else if (!s->argv || !s->argv[0] || !*s->argv[0])
        return err_set (e, EINVAL, "empty command");
    if (!s->image || !*s->image)
        return err_set (e, EINVAL, "no image to run");
    json_t *body = build_create_body (x, s, e);
    if (!body)
        return -1;
    struct dlaunch l = { .out_fd = -1, .err_fd = -1, .started_fd = -1 };
    launch_paths (x, s->task_id, s->attempt, s->vps, &l);
    if (s->vps)
        vps_launch (&l, s);
    l.create_body = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    l.image = xstrdup (s->image);
    if (s->environment && *s->environment) {
        l.environment = xstrdup (s->environment);
        char low[256];
        snprintf (low, sizeof low, "%s", s->environment);
        lower (low);
        snprintf (l.lock_path, sizeof l.lock_path, "%s/image-%s.lock", x->conf.state_dir, low);
        snprintf (l.loaded_path, sizeof l.loaded_path, "%s/image-%s.loaded", x->conf.state_dir,
                  low);
    }
    l.tar_dir = xstrdup (x->conf.tar_dir);
    unlink (l.cancel_path);
    if ((l.out_fd = open_output (s->stdout_path, e)) < 0
        || (l.err_fd = open_output (s->stderr_path, e)) < 0)
        goto fail;
    int sp[2];
    if (pipe2 (sp, O_CLOEXEC) < 0) {
        err_set (e, errno, "pipe: %s", strerror (errno));
        goto fail;
    }
    l.started_fd = sp[1];
    int pidfd = -1;
    pid_t pid = spawn_shim (&l, &pidfd, e);
    if (pid < 0) {
        close (sp[0]);
        goto fail;
    }
    fcntl (sp[0], F_SETFL, O_NONBLOCK);
    out->task_id = s->task_id;
    out->attempt = s->attempt;
    out->shim_pid = pid;
    out->pidfd = pidfd;
    out->start_fd = sp[0];
    snprintf (out->cgroup, sizeof out->cgroup, "%s", l.name);
    log_escape (s->vps || !s->argv ? "sshd" : s->argv[0], out->command, sizeof out->command);
    dlaunch_free (&l);
    return 0;
fail:
    dlaunch_free (&l);
    return -1;
}

/* The container's state: 1 exists (running/paused/created/exited) for ATTEMPT, with
 * *RUNNING saying whether it runs (or is paused); 0 absent or another attempt's; -1 error. */
static int container_alive (struct dockerx *x, const char *name, int attempt, bool *running,
                            struct err *e)
{
    char path[300];
    container_path (path, sizeof path, name, "/json");
    json_t *j = NULL;
    int code = docker_request (x->d, "GET", path, NULL, &j, API_TIMEOUT_MS, e);
    if (code == 404) {
        json_decref (j);
        return 0;
    }
    if (code < 0 || code >= 400) {
        json_decref (j);
        return -1;
    }
    const char *at = json_string_value (
        json_object_get (json_object_get (json_object_get (j, "Config"), "Labels"),
                         "hakuriver.attempt"));
    int rc = at && atoi (at) == attempt ? 1 : 0;
    *running = json_is_true (json_object_get (json_object_get (j, "State"), "Running"));
    json_decref (j);
    return rc;
}

static int docker_adopt (struct executor *ex, struct exec_task *t, const struct exec_spec *s,
                         struct err *e)
{
    struct dockerx *x = ex->impl;
    char path[4200];
    exit_path (x, t->task_id, t->attempt, "exit", path, sizeof path);
    t->pidfd = -1;
    if (access (path, F_OK) == 0)
        return 0;
    if (t->shim_pid > 0) {
        int fd = shim_pidfd_open (t->shim_pid);
        if (fd >= 0 && shim_is_ours (t->shim_pid)) {
            t->pidfd = fd;
            return 1;
        }
        if (fd >= 0)
            close (fd);
    }
    /* The shim is gone without a result: follow the container again, if it exists. */
    if (!t->cgroup[0])
        return 0;
    bool running = false;
    int alive = container_alive (x, t->cgroup, t->attempt, &running, e);
    if (alive < 0)
        return -1;
    if (alive == 0)
        return 0;
    bool vps = s && s->vps;
    struct dlaunch l = { .out_fd = -1, .err_fd = -1, .started_fd = -1 };
    launch_paths (x, t->task_id, t->attempt, vps, &l);
    const char *out = s && s->stdout_path ? s->stdout_path : "/dev/null";
    const char *err = s && s->stderr_path ? s->stderr_path : "/dev/null";
    if (vps) {
        /* A VPS lives as long as its container: one that stopped with its node (a reboot)
         * starts again, and says when it is reachable, on which port, through the pipe. */
        vps_launch (&l, s);
        if (!running) {
            char cp[300];
            container_path (cp, sizeof cp, t->cgroup, "/start");
            int code = docker_request (x->d, "POST", cp, NULL, NULL, API_TIMEOUT_MS, e);
            if (code < 0 || (code >= 400 && code != 304)) {
                dlaunch_free (&l);
                return err_wrap (e, "cannot start VPS container %s again", t->cgroup);
            }
            log_info ("task %" PRIu64 ".%d: VPS container %s had stopped; started it again",
                      t->task_id, t->attempt, t->cgroup);
        }
        int sp[2];
        if (pipe2 (sp, O_CLOEXEC) < 0) {
            dlaunch_free (&l);
            return err_set (e, errno, "pipe: %s", strerror (errno));
        }
        l.started_fd = sp[1];
        t->start_fd = sp[0];
        fcntl (sp[0], F_SETFL, O_NONBLOCK);
    }
    /* VPS: sshd's log goes on after what is there; a task's logs are replayed from the
     * start, so its files are rewritten. */
    if ((l.out_fd = vps ? open_append (out, e) : open_output (out, e)) < 0
        || (l.err_fd = vps ? open_append (err, e) : open_output (err, e)) < 0) {
        dlaunch_free (&l);
        if (t->start_fd >= 0)
            close (t->start_fd);
        t->start_fd = -1;
        return -1;
    }
    int pidfd = -1;
    pid_t pid = spawn_shim (&l, &pidfd, e);
    dlaunch_free (&l);
    if (pid < 0) {
        if (t->start_fd >= 0)
            close (t->start_fd);
        t->start_fd = -1;
        return -1;
    }
    log_info ("task %" PRIu64 ".%d: its shim was gone; following container %s again",
              t->task_id, t->attempt, t->cgroup);
    t->shim_pid = pid;
    t->pidfd = pidfd;
    return 1;
}

static int docker_collect (struct executor *ex, struct exec_task *t, struct exec_result *res,
                           struct err *e)
{
    struct dockerx *x = ex->impl;
    memset (res, 0, sizeof *res);
    if (t->pidfd >= 0)
        close (t->pidfd);
    t->pidfd = -1;
    if (t->shim_pid > 0)
        while (waitpid (t->shim_pid, NULL, WNOHANG) < 0 && errno == EINTR)
            ;
    char path[4200];
    exit_path (x, t->task_id, t->attempt, "exit", path, sizeof path);
    FILE *f = fopen (path, "re");
    int code = -1, sig = 0, oom = 0;
    bool have = false;
    if (f) {
        char line[1200] = "";
        if (fgets (line, sizeof line, f))
            have = sscanf (line, "%d %d %d", &code, &sig, &oom) == 3;
        if (have && fgets (line, sizeof line, f)) {
            line[strcspn (line, "\n")] = '\0';
            snprintf (res->message, sizeof res->message, "%s", line);
        }
        fclose (f);
    }
    if (!have) {
        res->exit_code = -1;
        snprintf (res->message, sizeof res->message,
                  "The task's supervisor process ended without recording a result (killed "
                  "from outside HakuRiver?).");
        /* Do not leave the container behind. */
        if (t->cgroup[0]) {
            char cp[300];
            container_path (cp, sizeof cp, t->cgroup, "?force=1");
            struct err ig = { 0 };
            docker_request (x->d, "DELETE", cp, NULL, NULL, API_TIMEOUT_MS, &ig);
        }
    } else {
        res->exit_code = code;
        res->term_signal = sig;
        res->oom_killed = oom != 0;
        if (code == START_FAILED_CODE && res->message[0]) {
            char m[sizeof res->message];
            snprintf (m, sizeof m, "Failed to start task: %s", res->message);
            memcpy (res->message, m, sizeof m);
        } else if (res->oom_killed) {
            res->message[0] = '\0';
        }
    }
    if (f) {
        shim_exit_files_add (&x->done, path);
    }
    (void)e;
    return 0;
}

static void docker_committed (struct executor *ex)
{
    struct dockerx *x = ex->impl;
    shim_exit_files_flush (&x->done);
}

static int docker_signal (struct executor *ex, struct exec_task *t, int sig, struct err *e)
{
    struct dockerx *x = ex->impl;
    if (!t->cgroup[0])
        return err_set (e, ENOENT, "task has no container");
    if (sig == SIGTERM || sig == SIGKILL) {
        /* The shim may still be loading the image: tell it not to start the container. */
        char cpath[4200];
        exit_path (x, t->task_id, t->attempt, "cancel", cpath, sizeof cpath);
        int fd = open (cpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close (fd);
    }
    char path[300], suffix[64];
    snprintf (suffix, sizeof suffix, "/kill?signal=%d", sig);
    container_path (path, sizeof path, t->cgroup, suffix);
    int code = docker_request (x->d, "POST", path, NULL, NULL, API_TIMEOUT_MS, e);
    if (code < 0)
        return -1;
    /* 404: not created yet (cancel file) or already removed; 409: not running. */
    if (code == 404 || code == 409) {
        *e = (struct err){ 0 };
        return 0;
    }
    return code >= 400 ? -1 : 0;
}

static int pause_op (struct executor *ex, struct exec_task *t, const char *op, struct err *e)
{
    struct dockerx *x = ex->impl;
    char path[300];
    container_path (path, sizeof path, t->cgroup, op);
    int code = docker_request (x->d, "POST", path, NULL, NULL, API_TIMEOUT_MS, e);
    if (code < 0)
        return -1;
    if (code >= 400)
        return err_wrap (e, "container %s", t->cgroup);
    return 0;
}

static int docker_pause (struct executor *ex, struct exec_task *t, struct err *e)
{
    return pause_op (ex, t, "/pause", e);
}

static int docker_resume (struct executor *ex, struct exec_task *t, struct err *e)
{
    return pause_op (ex, t, "/unpause", e);
}

static void docker_destroy (struct executor *ex)
{
    if (!ex)
        return;
    struct dockerx *x = ex->impl;
    docker_committed (ex);
    shim_exit_files_free (&x->done);
    numa_topology_clear (&x->topo);
    docker_close (x->d);
    free (x->conf.state_dir);
    free (x->conf.socket);
    free (x->conf.tar_dir);
    free (x->conf.node_id);
    free (x->conf.hostname);
    free (x);
    free (ex);
}

static const struct exec_ops docker_ops = {
    .name = "docker",
    .start = docker_start,
    .adopt = docker_adopt,
    .collect = docker_collect,
    .committed = docker_committed,
    .signal = docker_signal,
    .pause = docker_pause,
    .resume = docker_resume,
    .destroy = docker_destroy,
};

struct executor *exec_docker_create (const struct exec_docker_conf *conf, struct err *e)
{
    struct docker *d = docker_open (conf->socket, e);
    if (!d)
        return NULL;
    docker_spawn_kind = spawner_register (docker_shim_main);
    struct dockerx *x = xcalloc (1, sizeof *x);
    x->d = d;
    x->conf.state_dir = xstrdup (conf->state_dir);
    x->conf.socket = xstrdup (docker_socket_path (d));
    x->conf.tar_dir = xstrdup (conf->tar_dir);
    x->conf.node_id = xstrdup (conf->node_id);
    x->conf.hostname = xstrdup (conf->hostname);
    x->conf.pull_timeout = conf->pull_timeout;
    if (numa_topology_read (NULL, &x->topo, e) < 0) {
        numa_topology_clear (&x->topo);
        *e = (struct err){ 0 };
    }
    struct executor *ex = xcalloc (1, sizeof *ex);
    ex->ops = &docker_ops;
    ex->impl = x;
    return ex;
}

int exec_docker_ping (struct executor *ex, struct err *e)
{
    struct dockerx *x = ex->impl;
    int code = docker_request (x->d, "GET", "/_ping", NULL, NULL, 3000, e);
    return code == 200 ? 0 : -1;
}

int exec_docker_sweep (struct executor *ex, bool (*keep) (uint64_t task_id, int attempt, void *arg),
                       void *arg, struct err *e)
{
    struct dockerx *x = ex->impl;
    char filter[200], path[400];
    snprintf (filter, sizeof filter, "{\"label\":[\"hakuriver.node_id=%s\"]}", x->conf.node_id);
    char *esc = docker_escape (filter);
    snprintf (path, sizeof path, "/containers/json?all=1&filters=%s", esc);
    free (esc);
    json_t *list = NULL;
    int code = docker_request (x->d, "GET", path, NULL, &list, API_TIMEOUT_MS, e);
    if (code < 0 || code >= 400) {
        json_decref (list);
        return -1;
    }
    int removed = 0;
    size_t i;
    json_t *c;
    json_array_foreach (list, i, c)
    {
        json_t *labels = json_object_get (c, "Labels");
        const char *tid = json_string_value (json_object_get (labels, "hakuriver.task_id"));
        const char *att = json_string_value (json_object_get (labels, "hakuriver.attempt"));
        const char *id = json_string_value (json_object_get (c, "Id"));
        if (!tid || !att || !id)
            continue;
        uint64_t task_id = strtoull (tid, NULL, 10);
        if (keep (task_id, atoi (att), arg))
            continue;
        snprintf (path, sizeof path, "/containers/%s?force=1&v=1", id);
        struct err ig = { 0 };
        code = docker_request (x->d, "DELETE", path, NULL, NULL, API_TIMEOUT_MS, &ig);
        if (code >= 200 && code < 300) {
            removed++;
            log_info ("removed container %.12s of task %s.%s: this runner no longer supervises "
                      "it", id, tid, att);
        }
    }
    json_decref (list);
    return removed;
}
