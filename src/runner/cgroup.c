/* cgroup.c - cgroup v1/v2 detection and task cgroups: create, limits, freeze, kill, OOM, remove */
#include "runner/cgroup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/xalloc.h"

#define HK_DIR "hakuriver"           /* our sub-tree under the runner's cgroup */
#define RUNNER_LEAF "runner"         /* v2 leaf that holds the runner's own processes */
#define CPU_PERIOD_US 100000         /* CFS period; quota = cores * period */
#define FREEZE_WAIT_MS 2000          /* freezing a few processes takes well under 10 ms */
#define RMDIR_WAIT_MS 1000           /* killed processes leave the cgroup within ms */
#define KILL_ROUNDS 100              /* re-reads of cgroup.procs to catch racing forks */

static const char *const ctrl_names[CGROUP_NCTRL] = {
    [CGROUP_CPU] = "cpu",       [CGROUP_CPUACCT] = "cpuacct", [CGROUP_CPUSET] = "cpuset",
    [CGROUP_MEMORY] = "memory", [CGROUP_FREEZER] = "freezer", [CGROUP_PIDS] = "pids",
};

/* v2 controllers we enable for task cgroups, in subtree_control order. */
static const char *const v2_wanted[] = { "cpu", "memory", "cpuset", "pids" };
#define V2_NWANTED (sizeof v2_wanted / sizeof v2_wanted[0])

const char *cgroup_ctrl_name (enum cgroup_ctrl c)
{
    return (unsigned)c < CGROUP_NCTRL ? ctrl_names[c] : "?";
}

/* ---- small file helpers ------------------------------------------------------------- */

static void sleep_ms (int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Reads all of PATH into a new NUL-terminated buffer. Returns it, or NULL with errno. */
static char *read_all (const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, len = 0;
    char *buf;
    if (fd < 0)
        return NULL;
    buf = xmalloc (cap);
    for (;;) {
        ssize_t r = read (fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            free (buf);
            close (fd);
            errno = saved;
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (cap - len < 2) {
            cap *= 2;
            buf = xrealloc (buf, cap);
        }
    }
    close (fd);
    buf[len] = '\0';
    return buf;
}

/* Reads a short file into BUF, trailing whitespace trimmed. Returns 0 or -1 with errno. */
static int read_line (const char *path, char *buf, size_t size)
{
    ssize_t r = fileio_read_text (path, buf, size);
    if (r < 0)
        return -1;
    while (r > 0 && isspace ((unsigned char)buf[r - 1]))
        r--;
    buf[r] = '\0';
    return 0;
}

/* Writes S to an existing control file (O_TRUNC so fake trees hold only the last write).
 * Returns 0 or -1 with errno. */
static int write_file (const char *path, const char *s)
{
    int fd = open (path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    size_t len = strlen (s);
    ssize_t w;
    if (fd < 0)
        return -1;
    do
        w = write (fd, s, len);
    while (w < 0 && errno == EINTR);
    int saved = errno;
    if (close (fd) < 0 && w >= 0) {
        saved = errno;
        w = -1;
    }
    if (w < 0 || (size_t)w != len) {
        errno = w < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

static int path_join (char *buf, size_t size, const char *a, const char *b, const char *c)
{
    int n = snprintf (buf, size, "%s%s%s%s%s", a, b && *b ? "/" : "", b ? b : "",
                      c && *c ? "/" : "", c ? c : "");
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static bool exists (const char *path)
{
    return access (path, F_OK) == 0;
}

/* Value of "KEY N" in a flat-keyed file such as memory.events. Returns 0 or -1 (errno). */
static int read_keyed (const char *path, const char *key, int64_t *out)
{
    char *text = read_all (path);
    size_t klen = strlen (key);
    if (!text)
        return -1;
    for (char *line = text; line && *line;) {
        char *nl = strchr (line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp (line, key, klen) == 0 && line[klen] == ' ') {
            char *end;
            errno = 0;
            long long v = strtoll (line + klen + 1, &end, 10);
            if (!errno && end != line + klen + 1) {
                free (text);
                *out = v;
                return 0;
            }
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free (text);
    errno = ENOENT;
    return -1;
}

/* A REL name must stay inside the tree: relative, no ".." and no empty component. */
static bool rel_valid (const char *rel)
{
    if (!rel || !*rel || rel[0] == '/')
        return false;
    for (const char *p = rel; *p;) {
        size_t n = strcspn (p, "/");
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
        if (!*p && p[-1] == '/')
            return false;
    }
    return true;
}

/* ---- parsing ------------------------------------------------------------------------ */

/* Copies a mountinfo field, decoding \NNN octal escapes. */
static int copy_unescaped (char *dst, size_t size, const char *src, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '\\' && i + 3 < n && src[i + 1] >= '0' && src[i + 1] <= '3'
            && src[i + 2] >= '0' && src[i + 2] <= '7' && src[i + 3] >= '0' && src[i + 3] <= '7') {
            ch = (char)((src[i + 1] - '0') * 64 + (src[i + 2] - '0') * 8 + (src[i + 3] - '0'));
            i += 3;
        }
        if (j + 1 >= size)
            return -1;
        dst[j++] = ch;
    }
    dst[j] = '\0';
    return 0;
}

int cgroup_parse_mountinfo_line (const char *line, struct cgroup_mount_info *out)
{
    /* 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue */
    const char *f[6];
    size_t flen[6];
    const char *p = line;
    struct cgroup_mount_info m = { 0 };
    if (!line)
        return -1;
    for (int i = 0; i < 6; i++) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return -1;
        f[i] = p;
        flen[i] = strcspn (p, " \n");
        p += flen[i];
    }
    /* Optional fields until the " - " separator. */
    const char *sep = strstr (p, " - ");
    if (!sep)
        return -1;
    p = sep + 3;
    const char *fstype = p;
    size_t tlen = strcspn (p, " \n");
    if (tlen == 0)
        return -1;
    p += tlen;
    while (*p == ' ')
        p++;
    p += strcspn (p, " \n");   /* mount source */
    while (*p == ' ')
        p++;
    const char *opts = p;
    size_t olen = strcspn (p, " \n");
    if (tlen == 6 && strncmp (fstype, "cgroup", 6) == 0)
        m.v2 = false;
    else if (tlen == 7 && strncmp (fstype, "cgroup2", 7) == 0)
        m.v2 = true;
    else
        return 0;
    if (copy_unescaped (m.root, sizeof m.root, f[3], flen[3]) < 0
        || copy_unescaped (m.mount_point, sizeof m.mount_point, f[4], flen[4]) < 0
        || olen >= sizeof m.options)
        return -1;
    memcpy (m.options, opts, olen);
    m.options[olen] = '\0';
    *out = m;
    return 1;
}

int cgroup_parse_proc_line (const char *line, char *controllers, size_t csize, char *path,
                            size_t psize)
{
    const char *c1, *c2;
    size_t plen;
    if (!line || !isdigit ((unsigned char)line[0]))
        return -1;
    c1 = line;
    while (isdigit ((unsigned char)*c1))
        c1++;
    if (*c1 != ':')
        return -1;
    c1++;
    c2 = strchr (c1, ':');
    if (!c2)
        return -1;
    plen = strcspn (c2 + 1, "\n");
    if ((size_t)(c2 - c1) >= csize || plen >= psize || plen == 0 || c2[1] != '/')
        return -1;
    memcpy (controllers, c1, (size_t)(c2 - c1));
    controllers[c2 - c1] = '\0';
    memcpy (path, c2 + 1, plen);
    path[plen] = '\0';
    return 0;
}

/* Whether the comma list LIST contains WORD. */
static bool list_has (const char *list, const char *word, const char *seps)
{
    size_t wl = strlen (word);
    for (const char *p = list; *p;) {
        size_t n = strcspn (p, seps);
        if (n == wl && strncmp (p, word, n) == 0)
            return true;
        p += n;
        if (*p)
            p++;
    }
    return false;
}

/* PATH (absolute, from /proc/self/cgroup) relative to the mount's ROOT, no leading '/'. */
static void strip_root (char *dst, size_t size, const char *path, const char *root)
{
    size_t rl = strlen (root);
    const char *rest = path;
    if (strcmp (root, "/") != 0) {
        if (strncmp (path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0'))
            rest = path + rl;
        else
            rest = "/";   /* our cgroup is not visible through this mount: use its top */
    }
    while (*rest == '/')
        rest++;
    if (strstr (rest, "..") || strlen (rest) >= size)
        rest = "";
    snprintf (dst, size, "%s", rest);
    size_t n = strlen (dst);
    while (n > 0 && dst[n - 1] == '/')
        dst[--n] = '\0';
}

void cgroup_ctx_v2 (struct cgroup_ctx *cg, const char *mount, const char *base)
{
    memset (cg, 0, sizeof *cg);
    cg->mode = CGROUP_MODE_V2;
    snprintf (cg->mount[0], sizeof cg->mount[0], "%s", mount);
    snprintf (cg->base[0], sizeof cg->base[0], "%s", base ? base : "");
}

int cgroup_detect (const char *root, const char *mountinfo, const char *self,
                   struct cgroup_ctx *out, struct err *e)
{
    struct cgroup_ctx cg = { 0 };
    char mroot[CGROUP_NCTRL][CGROUP_PATH_MAX] = { { 0 } };
    char selfpath[CGROUP_NCTRL][CGROUP_PATH_MAX] = { { 0 } };
    char v2root[CGROUP_PATH_MAX] = "", v2self[CGROUP_PATH_MAX] = "";
    bool v2 = false, v1 = false;
    char *text = NULL;
    size_t rootlen;
    char rootbuf[CGROUP_PATH_MAX];

    snprintf (rootbuf, sizeof rootbuf, "%s", root);
    rootlen = strlen (rootbuf);
    while (rootlen > 1 && rootbuf[rootlen - 1] == '/')
        rootbuf[--rootlen] = '\0';
    if (!mountinfo)
        mountinfo = "/proc/self/mountinfo";
    if (!self)
        self = "/proc/self/cgroup";

    if (!(text = read_all (mountinfo)))
        return err_set (e, errno, "read `%s`: %s", mountinfo, strerror (errno));
    for (char *line = text; line && *line;) {
        char *nl = strchr (line, '\n');
        struct cgroup_mount_info m;
        if (nl)
            *nl = '\0';
        if (cgroup_parse_mountinfo_line (line, &m) == 1) {
            if (m.v2 && strcmp (m.mount_point, rootbuf) == 0) {
                v2 = true;
                snprintf (v2root, sizeof v2root, "%s", m.root);
            } else if (!m.v2 && strncmp (m.mount_point, rootbuf, rootlen) == 0
                       && m.mount_point[rootlen] == '/') {
                for (int c = 0; c < CGROUP_NCTRL; c++)
                    if (!cg.mount[c][0] && list_has (m.options, ctrl_names[c], ",")) {
                        snprintf (cg.mount[c], sizeof cg.mount[c], "%s", m.mount_point);
                        snprintf (mroot[c], sizeof mroot[c], "%s", m.root);
                        v1 = true;
                    }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free (text);

    if (!(text = read_all (self)))
        return err_set (e, errno, "read `%s`: %s", self, strerror (errno));
    for (char *line = text; line && *line;) {
        char *nl = strchr (line, '\n');
        char ctrls[256], path[CGROUP_PATH_MAX];
        if (nl)
            *nl = '\0';
        if (cgroup_parse_proc_line (line, ctrls, sizeof ctrls, path, sizeof path) == 0) {
            if (!ctrls[0])
                snprintf (v2self, sizeof v2self, "%s", path);
            for (int c = 0; c < CGROUP_NCTRL; c++)
                if (list_has (ctrls, ctrl_names[c], ","))
                    snprintf (selfpath[c], sizeof selfpath[c], "%s", path);
        }
        line = nl ? nl + 1 : NULL;
    }
    free (text);

    if (v2) {
        char leafless[CGROUP_PATH_MAX], sib[CGROUP_PATH_MAX * 2];
        cg = (struct cgroup_ctx){ 0 };
        cg.mode = CGROUP_MODE_V2;
        snprintf (cg.mount[0], sizeof cg.mount[0], "%s", rootbuf);
        strip_root (cg.base[0], sizeof cg.base[0], v2self[0] ? v2self : "/", v2root);
        /* A runner that already moved itself into our "runner" leaf (same process making a
         * second executor) must use the leaf's parent as the base. */
        char *slash = strrchr (cg.base[0], '/');
        const char *last = slash ? slash + 1 : cg.base[0];
        if (strcmp (last, RUNNER_LEAF) == 0) {
            snprintf (leafless, sizeof leafless, "%.*s", (int)(last - cg.base[0]),
                      cg.base[0]);
            size_t n = strlen (leafless);
            if (n && leafless[n - 1] == '/')
                leafless[n - 1] = '\0';
            int len = snprintf (sib, sizeof sib, "%s/%s%s" HK_DIR, rootbuf, leafless,
                                leafless[0] ? "/" : "");
            if (len > 0 && (size_t)len < sizeof sib && exists (sib))
                snprintf (cg.base[0], sizeof cg.base[0], "%s", leafless);
        }
    } else if (v1) {
        cg.mode = CGROUP_MODE_V1;
        for (int c = 0; c < CGROUP_NCTRL; c++)
            if (cg.mount[c][0])
                strip_root (cg.base[c], sizeof cg.base[c], selfpath[c][0] ? selfpath[c] : "/",
                            mroot[c]);
    } else {
        return err_set (e, ENOENT, "no cgroup v2 mounted at `%s` and no cgroup v1 controllers "
                        "below it", rootbuf);
    }
    *out = cg;
    return 0;
}

/* ---- paths --------------------------------------------------------------------------- */

/* Directory of REL for controller C (v2: C ignored). Returns 0 or -1 (errno). */
static int task_dir (const struct cgroup_ctx *cg, int c, const char *rel, char *buf, size_t size)
{
    if (cg->mode == CGROUP_MODE_V2)
        return path_join (buf, size, cg->mount[0], rel, NULL);
    if (!cg->mount[c][0]) {
        errno = ENOENT;
        return -1;
    }
    return path_join (buf, size, cg->mount[c], cg->base[c], rel);
}

/* Fills DIRS with every directory REL could have (one per distinct mounted hierarchy for v1),
 * without looking at which exist. Returns their number, or -1 (errno). */
static int candidate_dirs (const struct cgroup_ctx *cg, const char *rel,
                           char dirs[][CGROUP_PATH_MAX])
{
    int n = 0;
    if (cg->mode == CGROUP_MODE_V2)
        return task_dir (cg, 0, rel, dirs[0], CGROUP_PATH_MAX) < 0 ? -1 : 1;
    for (int c = 0; c < CGROUP_NCTRL; c++) {
        char d[CGROUP_PATH_MAX];
        bool dup = false;
        if (!cg->mount[c][0])
            continue;
        if (task_dir (cg, c, rel, d, sizeof d) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            dup = dup || strcmp (dirs[i], d) == 0;
        if (!dup)
            memcpy (dirs[n++], d, sizeof d);
    }
    return n;
}

int cgroup_dirs (const struct cgroup_ctx *cg, const char *rel, char dirs[][CGROUP_PATH_MAX],
                 struct err *e)
{
    char all[CGROUP_NCTRL][CGROUP_PATH_MAX];
    if (!rel_valid (rel))
        return err_set (e, EINVAL, "invalid cgroup name `%s`", rel ? rel : "");
    int n = candidate_dirs (cg, rel, all), k = 0;
    if (n < 0)
        return err_set (e, errno, "cgroup path too long");
    for (int i = 0; i < n; i++)
        /* v1 tasks get only the hierarchies they need (v1_create) */
        if (cg->mode == CGROUP_MODE_V2 || exists (all[i]))
            memcpy (dirs[k++], all[i], sizeof all[i]);
    return k;
}

int cgroup_exists (const struct cgroup_ctx *cg, const char *rel)
{
    char dirs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    if (!rel_valid (rel))
        return 0;
    int n = candidate_dirs (cg, rel, dirs);
    for (int i = 0; i < n; i++)
        if (exists (dirs[i]))
            return 1;
    return 0;
}

/* ---- v2 creation --------------------------------------------------------------------- */

/* Bitmask over v2_wanted of the controllers named in the file (tokens, '+' ignored). */
static unsigned v2_read_set (const char *path)
{
    char buf[1024];
    unsigned set = 0;
    if (read_line (path, buf, sizeof buf) < 0)
        return 0;
    for (char *tok = strtok (buf, " \n"); tok; tok = strtok (NULL, " \n")) {
        if (*tok == '+')
            tok++;
        for (size_t i = 0; i < V2_NWANTED; i++)
            if (strcmp (tok, v2_wanted[i]) == 0)
                set |= 1u << i;
    }
    return set;
}

/* Moves every process of DIR into DIR/runner so DIR may enable controllers (the v2
 * no-internal-process rule), as crun and systemd do. Returns 0 or -1 with errno. */
static int v2_evacuate (const char *dir)
{
    char leaf[CGROUP_PATH_MAX], procs[CGROUP_PATH_MAX], dst[CGROUP_PATH_MAX];
    if (path_join (leaf, sizeof leaf, dir, RUNNER_LEAF, NULL) < 0
        || path_join (procs, sizeof procs, dir, "cgroup.procs", NULL) < 0
        || path_join (dst, sizeof dst, leaf, "cgroup.procs", NULL) < 0)
        return -1;
    if (mkdir (leaf, 0755) < 0 && errno != EEXIST)
        return -1;
    for (int round = 0; round < 50; round++) {
        char *text = read_all (procs);
        bool any = false;
        if (!text)
            return -1;
        for (char *tok = strtok (text, "\n"); tok; tok = strtok (NULL, "\n")) {
            any = true;
            if (write_file (dst, tok) < 0 && errno != ESRCH) {
                int saved = errno;
                free (text);
                errno = saved;
                return -1;
            }
        }
        free (text);
        if (!any)
            return 0;
    }
    errno = EBUSY;
    return -1;
}

/* Enables the wanted controllers available in DIR for its children. EVACUATE: DIR is the
 * runner's own (non-root) cgroup, whose processes may have to move first. */
static int v2_enable (const char *dir, bool evacuate, struct err *e)
{
    char pc[CGROUP_PATH_MAX], ps[CGROUP_PATH_MAX], line[128] = "";
    if (path_join (pc, sizeof pc, dir, "cgroup.controllers", NULL) < 0
        || path_join (ps, sizeof ps, dir, "cgroup.subtree_control", NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    unsigned missing = v2_read_set (pc) & ~v2_read_set (ps);
    if (!missing)
        return 0;
    for (size_t i = 0; i < V2_NWANTED; i++)
        if (missing & (1u << i)) {
            size_t n = strlen (line);
            snprintf (line + n, sizeof line - n, "%s+%s", n ? " " : "", v2_wanted[i]);
        }
    if (write_file (ps, line) == 0)
        return 0;
    if (errno == EBUSY && evacuate) {
        if (v2_evacuate (dir) < 0)
            return err_set (e, errno, "move the runner's processes to `%s/" RUNNER_LEAF "`: %s",
                            dir, strerror (errno));
        if (write_file (ps, line) == 0)
            return 0;
    }
    return err_set (e, errno, "write `%s` to `%s`: %s", line, ps, strerror (errno));
}

static int set_file (const char *dir, const char *file, const char *value, struct err *e)
{
    char p[CGROUP_PATH_MAX];
    if (path_join (p, sizeof p, dir, file, NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    if (write_file (p, value) < 0)
        return err_set (e, errno, "write `%s` to `%s`: %s", value, p, strerror (errno));
    return 0;
}

static int set_file_if_exists (const char *dir, const char *file, const char *value,
                               struct err *e)
{
    char p[CGROUP_PATH_MAX];
    if (path_join (p, sizeof p, dir, file, NULL) < 0 || !exists (p))
        return 0;
    return set_file (dir, file, value, e);
}

static int v2_create (const struct cgroup_ctx *cg, const char *name,
                      const struct cgroup_limits *lim, char *rel, size_t rsize, struct err *e)
{
    char dir[CGROUP_PATH_MAX], hk[CGROUP_PATH_MAX], td[CGROUP_PATH_MAX], r[CGROUP_PATH_MAX];
    char val[64];
    const char *base = cg->base[0];
    bool made = false;

    /* Ancestors above the runner's cgroup: best effort (usually systemd's business). */
    snprintf (dir, sizeof dir, "%s", cg->mount[0]);
    for (const char *p = base; *p;) {
        size_t n = strcspn (p, "/");
        (void)v2_enable (dir, false, NULL);
        size_t dl = strlen (dir);
        if (dl + 1 + n >= sizeof dir)
            return err_set (e, ENAMETOOLONG, "cgroup path too long");
        snprintf (dir + dl, sizeof dir - dl, "/%.*s", (int)n, p);
        p += n;
        if (*p == '/')
            p++;
    }
    if (v2_enable (dir, base[0] != '\0', e) < 0)
        return -1;
    if (path_join (hk, sizeof hk, dir, HK_DIR, NULL) < 0
        || path_join (td, sizeof td, hk, name, NULL) < 0
        || (base[0] ? path_join (r, sizeof r, base, HK_DIR, name)
                    : path_join (r, sizeof r, HK_DIR, name, NULL)) < 0   /* root cgroup */
        || strlen (r) >= rsize)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    if (mkdir (hk, 0755) < 0 && errno != EEXIST)
        return err_set (e, errno, "mkdir `%s`: %s", hk, strerror (errno));
    if (v2_enable (hk, false, e) < 0)
        return -1;
    if (mkdir (td, 0755) < 0) {
        if (errno != EEXIST)
            return err_set (e, errno, "mkdir `%s`: %s", td, strerror (errno));
    } else {
        made = true;
    }
    if (lim->cores > 0) {
        snprintf (val, sizeof val, "%lld %d", (long long)lim->cores * CPU_PERIOD_US,
                  CPU_PERIOD_US);
        if (set_file (td, "cpu.max", val, e) < 0)
            goto error;
    }
    if (lim->memory_bytes > 0) {
        snprintf (val, sizeof val, "%" PRId64, lim->memory_bytes);
        if (set_file (td, "memory.max", val, e) < 0
            || set_file_if_exists (td, "memory.swap.max", "0", e) < 0)
            goto error;
    }
    /* An OOM kill takes the whole task down rather than leaving it half alive. */
    if (set_file_if_exists (td, "memory.oom.group", "1", e) < 0)
        goto error;
    /* Without a delegated cpuset controller the task still gets CPU affinity and a memory
     * policy (exec_native.c). */
    if ((lim->cpus && set_file_if_exists (td, "cpuset.cpus", lim->cpus, e) < 0)
        || (lim->mems && set_file_if_exists (td, "cpuset.mems", lim->mems, e) < 0))
        goto error;
    snprintf (rel, rsize, "%s", r);
    return 0;
error:
    if (made)
        rmdir (td);
    return err_wrap (e, "cgroup `%s`", r);
}

/* ---- v1 creation --------------------------------------------------------------------- */

/* v1 cpuset cgroups start with empty cpus/mems and refuse processes until set: copy the
 * parent's (or use WANT when given). */
static int v1_cpuset_init (const char *dir, const char *parent, const char *file,
                           const char *want, struct err *e)
{
    char p[CGROUP_PATH_MAX], cur[4096];
    if (want)
        return set_file (dir, file, want, e);
    if (path_join (p, sizeof p, dir, file, NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    if (read_line (p, cur, sizeof cur) == 0 && cur[0])
        return 0;
    if (path_join (p, sizeof p, parent, file, NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    if (read_line (p, cur, sizeof cur) < 0)
        return err_set (e, errno, "read `%s`: %s", p, strerror (errno));
    return set_file (dir, file, cur, e);
}

/* Each v1 cgroup costs a mkdir and an rmdir per task (memcg ones are expensive), so a task
 * gets only what it uses: memory (limit, OOM counter) and freezer (pause, and the process
 * list for kill) always, cpu (and a co-mounted cpuacct) for a CPU quota, cpuset for a NUMA
 * binding. cpuacct alone and pids are not used. */
static bool v1_needed (int c, const struct cgroup_limits *lim)
{
    switch (c) {
    case CGROUP_MEMORY:
    case CGROUP_FREEZER: return true;
    case CGROUP_CPU: return lim->cores > 0;
    case CGROUP_CPUSET: return lim->cpus || lim->mems;
    default: return false;
    }
}

static int v1_create (const struct cgroup_ctx *cg, const char *name,
                      const struct cgroup_limits *lim, char *rel, size_t rsize, struct err *e)
{
    char made[CGROUP_NCTRL][CGROUP_PATH_MAX];
    int nmade = 0;
    char r[CGROUP_PATH_MAX], val[64];
    char cpu_dir[CGROUP_PATH_MAX] = "", mem_dir[CGROUP_PATH_MAX] = "";

    if (path_join (r, sizeof r, HK_DIR, name, NULL) < 0 || strlen (r) >= rsize)
        return err_set (e, ENAMETOOLONG, "cgroup name too long");
    if (lim->cores > 0 && !cg->mount[CGROUP_CPU][0])
        return err_set (e, ENOTSUP, "a CPU limit needs the cgroup v1 cpu controller");
    if (lim->memory_bytes > 0 && !cg->mount[CGROUP_MEMORY][0])
        return err_set (e, ENOTSUP, "a memory limit needs the cgroup v1 memory controller");
    for (int c = 0; c < CGROUP_NCTRL; c++) {
        char dir[CGROUP_PATH_MAX], hk[CGROUP_PATH_MAX], td[CGROUP_PATH_MAX];
        bool dup = false;
        if (!cg->mount[c][0] || !v1_needed (c, lim))
            continue;
        if (path_join (dir, sizeof dir, cg->mount[c], cg->base[c], NULL) < 0
            || path_join (hk, sizeof hk, dir, HK_DIR, NULL) < 0
            || path_join (td, sizeof td, hk, name, NULL) < 0) {
            err_set (e, ENAMETOOLONG, "cgroup path too long");
            goto error;
        }
        for (int i = 0; i < nmade; i++)
            dup = dup || strcmp (made[i], td) == 0;
        if (c == CGROUP_CPU)
            snprintf (cpu_dir, sizeof cpu_dir, "%s", td);
        if (c == CGROUP_MEMORY)
            snprintf (mem_dir, sizeof mem_dir, "%s", td);
        if (dup)
            continue;
        if (mkdir (hk, 0755) < 0 && errno != EEXIST) {
            err_set (e, errno, "mkdir `%s`: %s", hk, strerror (errno));
            goto error;
        }
        if (c == CGROUP_CPUSET && (v1_cpuset_init (hk, dir, "cpuset.cpus", NULL, e) < 0
                                   || v1_cpuset_init (hk, dir, "cpuset.mems", NULL, e) < 0))
            goto error;
        if (mkdir (td, 0755) < 0 && errno != EEXIST) {
            err_set (e, errno, "mkdir `%s`: %s", td, strerror (errno));
            goto error;
        }
        memcpy (made[nmade++], td, sizeof td);
        if (c == CGROUP_CPUSET
            && (v1_cpuset_init (td, hk, "cpuset.cpus", lim->cpus, e) < 0
                || v1_cpuset_init (td, hk, "cpuset.mems", lim->mems, e) < 0))
            goto error;
    }
    if (nmade == 0) {
        err_set (e, ENOENT, "no cgroup v1 controller is mounted");
        goto error;
    }
    if (lim->cores > 0) {
        snprintf (val, sizeof val, "%lld", (long long)lim->cores * CPU_PERIOD_US);
        if (set_file (cpu_dir, "cpu.cfs_period_us", "100000", e) < 0
            || set_file (cpu_dir, "cpu.cfs_quota_us", val, e) < 0)
            goto error;
    }
    if (lim->memory_bytes > 0) {
        snprintf (val, sizeof val, "%" PRId64, lim->memory_bytes);
        /* limit_in_bytes first: memsw must never be below it. */
        if (set_file (mem_dir, "memory.limit_in_bytes", val, e) < 0
            || set_file_if_exists (mem_dir, "memory.memsw.limit_in_bytes", val, e) < 0)
            goto error;
        (void)set_file_if_exists (mem_dir, "memory.swappiness", "0", NULL);
    }
    snprintf (rel, rsize, "%s", r);
    return 0;
error:
    for (int i = 0; i < nmade; i++)
        rmdir (made[i]);
    return err_wrap (e, "cgroup `%s`", r);
}

int cgroup_task_rel (const struct cgroup_ctx *cg, const char *name, char *rel, size_t rsize,
                     struct err *e)
{
    char r[CGROUP_PATH_MAX];
    if (!name || !*name || strchr (name, '/') || strcmp (name, "..") == 0
        || strcmp (name, ".") == 0)
        return err_set (e, EINVAL, "invalid cgroup name `%s`", name ? name : "");
    int rc = cg->mode == CGROUP_MODE_V2 && cg->base[0][0]
                 ? path_join (r, sizeof r, cg->base[0], HK_DIR, name)
                 : path_join (r, sizeof r, HK_DIR, name, NULL);
    if (rc < 0 || strlen (r) >= rsize)
        return err_set (e, ENAMETOOLONG, "cgroup name too long");
    snprintf (rel, rsize, "%s", r);
    return 0;
}

int cgroup_create (const struct cgroup_ctx *cg, const char *name, const struct cgroup_limits *lim,
                   char *rel, size_t rsize, struct err *e)
{
    static const struct cgroup_limits none = { 0 };
    if (!name || !*name || strchr (name, '/') || strcmp (name, "..") == 0
        || strcmp (name, ".") == 0)
        return err_set (e, EINVAL, "invalid cgroup name `%s`", name ? name : "");
    if (!lim)
        lim = &none;
    if (lim->cores < 0 || lim->memory_bytes < 0)
        return err_set (e, EINVAL, "negative cgroup limit");
    if (cg->mode == CGROUP_MODE_V2)
        return v2_create (cg, name, lim, rel, rsize, e);
    if (cg->mode == CGROUP_MODE_V1)
        return v1_create (cg, name, lim, rel, rsize, e);
    return err_set (e, ENOTSUP, "no cgroup hierarchy");
}

/* ---- freeze / kill / OOM / remove --------------------------------------------------- */

static int v1_freezer_state (const struct cgroup_ctx *cg, const char *rel, char *path,
                             size_t size, struct err *e)
{
    char dir[CGROUP_PATH_MAX];
    if (!cg->mount[CGROUP_FREEZER][0])
        return err_set (e, ENOTSUP, "the cgroup v1 freezer controller is not mounted");
    if (task_dir (cg, CGROUP_FREEZER, rel, dir, sizeof dir) < 0
        || path_join (path, size, dir, "freezer.state", NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    return 0;
}

int cgroup_freeze (const struct cgroup_ctx *cg, const char *rel, bool freeze, struct err *e)
{
    char path[CGROUP_PATH_MAX], dir[CGROUP_PATH_MAX], buf[256];
    if (!rel_valid (rel))
        return err_set (e, EINVAL, "invalid cgroup name `%s`", rel ? rel : "");
    if (cg->mode == CGROUP_MODE_V2) {
        if (task_dir (cg, 0, rel, dir, sizeof dir) < 0
            || path_join (path, sizeof path, dir, "cgroup.freeze", NULL) < 0)
            return err_set (e, ENAMETOOLONG, "cgroup path too long");
        if (write_file (path, freeze ? "1" : "0") < 0)
            return err_set (e, errno, "write `%s`: %s", path, strerror (errno));
        if (!freeze)
            return 0;
        path_join (path, sizeof path, dir, "cgroup.events", NULL);
        for (int waited = 0; waited <= FREEZE_WAIT_MS; waited += 5) {
            int64_t frozen = 0;
            if (read_keyed (path, "frozen", &frozen) < 0)
                return err_set (e, errno, "read `%s`: %s", path, strerror (errno));
            if (frozen == 1)
                return 0;
            sleep_ms (5);
        }
    } else if (cg->mode == CGROUP_MODE_V1) {
        if (v1_freezer_state (cg, rel, path, sizeof path, e) < 0)
            return -1;
        if (write_file (path, freeze ? "FROZEN" : "THAWED") < 0)
            return err_set (e, errno, "write `%s`: %s", path, strerror (errno));
        if (!freeze)
            return 0;
        /* FREEZING until every task is in the refrigerator. */
        for (int waited = 0; waited <= FREEZE_WAIT_MS; waited += 5) {
            if (read_line (path, buf, sizeof buf) < 0)
                return err_set (e, errno, "read `%s`: %s", path, strerror (errno));
            if (strcmp (buf, "FROZEN") == 0)
                return 0;
            sleep_ms (5);
        }
    } else {
        return err_set (e, ENOTSUP, "no cgroup hierarchy");
    }
    (void)cgroup_freeze (cg, rel, false, NULL);
    return err_set (e, ETIMEDOUT, "cgroup `%s` did not freeze within %d ms", rel, FREEZE_WAIT_MS);
}

static bool pid_in (const pid_t *v, size_t n, pid_t p)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == p)
            return true;
    return false;
}

int cgroup_kill (const struct cgroup_ctx *cg, const char *rel, int sig, struct err *e)
{
    char dirs[CGROUP_NCTRL][CGROUP_PATH_MAX], procs[CGROUP_PATH_MAX], path[CGROUP_PATH_MAX];
    pid_t *done = NULL;
    size_t ndone = 0, cap = 0;
    int n = cgroup_dirs (cg, rel, dirs, e);
    int rc = -1;
    if (n < 0)
        return -1;
    if (n == 0)
        return err_set (e, ENOTSUP, "no cgroup hierarchy");
    /* Any hierarchy lists every process of the task: the child joins them all. */
    if (!exists (dirs[0]))
        return err_set (e, ENOENT, "cgroup `%s` does not exist", dirs[0]);
    if (path_join (procs, sizeof procs, dirs[0], "cgroup.procs", NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    if (sig == SIGKILL && cg->mode == CGROUP_MODE_V2
        && path_join (path, sizeof path, dirs[0], "cgroup.kill", NULL) == 0 && exists (path)) {
        if (write_file (path, "1") < 0)
            return err_set (e, errno, "write `%s`: %s", path, strerror (errno));
        return 0;
    }
    for (int round = 0; round < KILL_ROUNDS; round++) {
        char *text = read_all (procs);
        size_t fresh = 0;
        if (!text) {
            err_set (e, errno, "read `%s`: %s", procs, strerror (errno));
            goto out;
        }
        for (char *tok = strtok (text, "\n"); tok; tok = strtok (NULL, "\n")) {
            char *end;
            long p = strtol (tok, &end, 10);
            if (*end || p <= 0 || pid_in (done, ndone, (pid_t)p))
                continue;
            if (kill ((pid_t)p, sig) < 0 && errno != ESRCH) {
                int saved = errno;
                free (text);
                err_set (e, saved, "kill %ld: %s", p, strerror (saved));
                goto out;
            }
            if (ndone == cap) {
                cap = cap ? cap * 2 : 16;
                done = xreallocarray (done, cap, sizeof *done);
            }
            done[ndone++] = (pid_t)p;
            fresh++;
        }
        free (text);
        if (!fresh)
            break;
    }
    /* v1 frozen processes only act on SIGKILL once thawed. */
    if (sig == SIGKILL && cg->mode == CGROUP_MODE_V1 && cg->mount[CGROUP_FREEZER][0]
        && v1_freezer_state (cg, rel, path, sizeof path, NULL) == 0) {
        char st[64];
        if (read_line (path, st, sizeof st) == 0 && strcmp (st, "THAWED") != 0)
            (void)write_file (path, "THAWED");
    }
    rc = 0;
out:
    free (done);
    return rc;
}

int cgroup_oom (const struct cgroup_ctx *cg, const char *rel, int64_t *kills, int64_t *limit,
                struct err *e)
{
    char dir[CGROUP_PATH_MAX], ev[CGROUP_PATH_MAX], lp[CGROUP_PATH_MAX], buf[64];
    int64_t k = 0, l = 0;
    bool v2 = cg->mode == CGROUP_MODE_V2;
    if (!rel_valid (rel))
        return err_set (e, EINVAL, "invalid cgroup name `%s`", rel ? rel : "");
    if (cg->mode == CGROUP_MODE_NONE)
        return err_set (e, ENOTSUP, "no cgroup hierarchy");
    if (task_dir (cg, CGROUP_MEMORY, rel, dir, sizeof dir) < 0)
        return err_set (e, errno, "no memory cgroup for `%s`", rel);
    if (path_join (ev, sizeof ev, dir, v2 ? "memory.events" : "memory.oom_control", NULL) < 0
        || path_join (lp, sizeof lp, dir, v2 ? "memory.max" : "memory.limit_in_bytes", NULL) < 0)
        return err_set (e, ENAMETOOLONG, "cgroup path too long");
    if (read_keyed (ev, "oom_kill", &k) < 0)
        return err_set (e, errno, "read oom_kill from `%s`: %s", ev, strerror (errno));
    if (read_line (lp, buf, sizeof buf) == 0) {
        char *end;
        long long v = strtoll (buf, &end, 10);
        /* "max" (v2) or the v1 "unlimited" value near 2^63 mean no limit. */
        if (*end == '\0' && end != buf && v > 0 && v < (1LL << 62))
            l = v;
    }
    *kills = k;
    *limit = l;
    return 0;
}

int cgroup_remove (const struct cgroup_ctx *cg, const char *rel, struct err *e)
{
    char dirs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    if (!rel_valid (rel))
        return err_set (e, EINVAL, "invalid cgroup name `%s`", rel ? rel : "");
    int n = candidate_dirs (cg, rel, dirs);
    if (n < 0)
        return err_set (e, errno, "cgroup path too long");
    /* rmdir first: the cgroup of a task that ended is usually empty, and an absent
     * hierarchy (v1 tasks get only those they use) answers ENOENT. Only a populated one
     * (EBUSY: processes left behind) is killed, then retried while they exit. */
    for (int i = 0; i < n; i++) {
        int waited = 0;
        while (rmdir (dirs[i]) < 0) {
            if (errno == ENOENT)
                break;
            if (errno != EBUSY || waited >= RMDIR_WAIT_MS)
                return err_set (e, errno, "rmdir `%s`: %s", dirs[i], strerror (errno));
            if (waited % 100 == 0)
                (void)cgroup_kill (cg, rel, SIGKILL, NULL);
            sleep_ms (10);
            waited += 10;
        }
    }
    return 0;
}
