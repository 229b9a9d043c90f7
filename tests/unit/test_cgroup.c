/* test_cgroup.c - cgroup v1/v2 parsing, detection and task cgroups against fake trees
 *
 * Everything runs under a mkdtemp directory: fake mountinfo and /proc/self/cgroup files for
 * cgroup_detect, and plain directories standing in for cgroupfs. A fake tree differs from
 * the kernel's in three ways that shape these tests:
 *   - mkdir creates an empty directory, not the control files, so the tests pre-create
 *     the files cgroup.c writes (it opens them without O_CREAT, as cgroupfs requires);
 *   - a written file keeps only the last write (cgroup.c truncates), so "+cpu +memory" in
 *     subtree_control is what was written, not what the kernel would report;
 *   - rmdir fails with ENOTEMPTY on a directory holding files, and never with EBUSY, so
 *     cgroup_remove's wait-while-populated loop and v2_evacuate's EBUSY path (moving the
 *     runner into a "runner" leaf) are not reachable here. The integration tests cover
 *     them on a real hierarchy. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/tap.h"
#include "runner/cgroup.h"

static char tmpdir[] = "/tmp/test_cgroup.XXXXXX";

/* ---- fake tree helpers --------------------------------------------------------------- */

static const char *at (const char *rel)
{
    static char buf[4][1024];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf (p, sizeof buf[0], "%s/%s", tmpdir, rel);
    return p;
}

static void put (const char *rel, const char *text)
{
    const char *path = at (rel);
    FILE *f = fopen (path, "w");
    if (!f) {
        perror (path);
        exit (1);
    }
    fputs (text, f);
    fclose (f);
}

/* Contents of tmpdir/REL without trailing newline, or "<missing>". */
static const char *get (const char *rel)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    FILE *f = fopen (at (rel), "r");
    if (!f)
        return "<missing>";
    size_t n = fread (b, 1, sizeof buf[0] - 1, f);
    fclose (f);
    b[n] = '\0';
    while (n > 0 && b[n - 1] == '\n')
        b[--n] = '\0';
    return b;
}

static void mkdirs (const char *rel)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/%s", tmpdir, rel);
    for (char *p = path + strlen (tmpdir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir (path, 0755) < 0 && errno != EEXIST) {
                perror (path);
                exit (1);
            }
            *p = '/';
        }
    if (mkdir (path, 0755) < 0 && errno != EEXIST) {
        perror (path);
        exit (1);
    }
}

static bool is_dir (const char *rel)
{
    struct stat st;
    return stat (at (rel), &st) == 0 && S_ISDIR (st.st_mode);
}

/* Removes tmpdir/REL and everything below it. */
static void rm_tree (const char *rel)
{
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", at (rel));
    if (system (cmd) != 0)
        diag ("rm -rf %s failed", rel);
}

/* Writes the fake mountinfo and self files; returns 0/-1 from cgroup_detect. ROOT is
 * relative to tmpdir. */
static int detect (const char *root, const char *mountinfo, const char *self,
                   struct cgroup_ctx *cg, struct err *e)
{
    put ("mountinfo", mountinfo);
    put ("self", self);
    char r[1024], mi[1024], sf[1024];
    snprintf (r, sizeof r, "%s", at (root));
    snprintf (mi, sizeof mi, "%s", at ("mountinfo"));
    snprintf (sf, sizeof sf, "%s", at ("self"));
    return cgroup_detect (r, mi, sf, cg, e);
}

/* ---- parsing ------------------------------------------------------------------------- */

static void test_mountinfo_line (void)
{
    struct cgroup_mount_info m;

    memset (&m, 0, sizeof m);
    is_int (cgroup_parse_mountinfo_line (
                "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
                "cgroup2 rw,nsdelegate,memory_recursiveprot\n",
                &m),
            1, "cgroup2 line recognised");
    ok (m.v2, "cgroup2 line is v2");
    is_str (m.mount_point, "/sys/fs/cgroup", "cgroup2 mount point");
    is_str (m.root, "/", "cgroup2 root");
    is_str (m.options, "rw,nsdelegate,memory_recursiveprot", "super options, newline dropped");

    is_int (cgroup_parse_mountinfo_line (
                "35 26 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 master:3 - cgroup "
                "cgroup rw,cpu,cpuacct",
                &m),
            1, "v1 line with two optional fields recognised");
    ok (!m.v2, "v1 line is not v2");
    is_str (m.mount_point, "/sys/fs/cgroup/cpu,cpuacct", "v1 mount point keeps its comma");
    is_str (m.options, "rw,cpu,cpuacct", "v1 super options");

    is_int (cgroup_parse_mountinfo_line (
                "40 26 0:33 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory", &m),
            1, "v1 line without optional fields recognised");
    is_str (m.root, "/docker/abc", "hierarchy root of a bind-mounted cgroup");

    is_int (cgroup_parse_mountinfo_line (
                "41 23 0:34 /a\\040b /mnt/my\\040cgroup\\011x rw - cgroup2 none rw", &m),
            1, "line with octal escapes recognised");
    is_str (m.mount_point, "/mnt/my cgroup\tx", "\\040 and \\011 decoded in the mount point");
    is_str (m.root, "/a b", "\\040 decoded in the root");

    is_int (cgroup_parse_mountinfo_line ("42 23 0:35 / /mnt/x\\9 rw - cgroup2 none rw", &m), 1,
            "a backslash that is not an octal escape is kept");
    is_str (m.mount_point, "/mnt/x\\9", "non-escape backslash copied verbatim");

    struct cgroup_mount_info keep = { .mount_point = "untouched" };
    m = keep;
    is_int (cgroup_parse_mountinfo_line (
                "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro", &m),
            0, "ext4 line is not a cgroup mount");
    is_int (cgroup_parse_mountinfo_line (
                "50 23 0:40 / /x rw - cgroupfs none rw", &m),
            0, "fstype that only starts with cgroup is not cgroup");
    is_int (cgroup_parse_mountinfo_line ("50 23 0:40 / /x rw - cgroup22 none rw", &m), 0,
            "fstype cgroup22 is not cgroup2");
    is_str (m.mount_point, "untouched", "output untouched for other filesystems");

    is_int (cgroup_parse_mountinfo_line ("", &m), -1, "empty line is malformed");
    is_int (cgroup_parse_mountinfo_line ("\n", &m), -1, "bare newline is malformed");
    is_int (cgroup_parse_mountinfo_line ("30 23 0:26 / /sys/fs/cgroup", &m), -1,
            "five fields are malformed");
    is_int (cgroup_parse_mountinfo_line ("30 23 0:26 / /sys/fs/cgroup rw cgroup2 cgroup2 rw",
                                         &m),
            -1, "no ' - ' separator is malformed");
    is_int (cgroup_parse_mountinfo_line ("30 23 0:26 / /sys/fs/cgroup rw -  cgroup2 x rw", &m),
            -1, "empty fstype after the separator is malformed");
    is_int (cgroup_parse_mountinfo_line (NULL, &m), -1, "NULL line is malformed");
    is_str (m.mount_point, "untouched", "output untouched on malformed lines");

    /* A mount point longer than CGROUP_PATH_MAX cannot be stored. */
    char longline[CGROUP_PATH_MAX + 200], longmp[CGROUP_PATH_MAX + 50];
    memset (longmp, 'a', sizeof longmp - 1);
    longmp[0] = '/';
    longmp[sizeof longmp - 1] = '\0';
    snprintf (longline, sizeof longline, "30 23 0:26 / %s rw - cgroup2 cgroup2 rw", longmp);
    is_int (cgroup_parse_mountinfo_line (longline, &m), -1, "over-long mount point rejected");
}

static void test_proc_line (void)
{
    char c[64], p[64];

    ok (cgroup_parse_proc_line ("0::/system.slice/hr.service\n", c, sizeof c, p, sizeof p) == 0,
        "v2 line parses");
    is_str (c, "", "v2 line has no controllers");
    is_str (p, "/system.slice/hr.service", "v2 path, newline dropped");

    ok (cgroup_parse_proc_line ("4:cpu,cpuacct:/user.slice", c, sizeof c, p, sizeof p) == 0,
        "v1 line parses");
    is_str (c, "cpu,cpuacct", "v1 controllers");
    is_str (p, "/user.slice", "v1 path");

    ok (cgroup_parse_proc_line ("1:name=systemd:/init.scope", c, sizeof c, p, sizeof p) == 0,
        "named hierarchy parses");
    is_str (c, "name=systemd", "named hierarchy controllers");
    ok (cgroup_parse_proc_line ("0::/", c, sizeof c, p, sizeof p) == 0 && strcmp (p, "/") == 0,
        "root cgroup '/' parses");
    ok (cgroup_parse_proc_line ("0::/a:b", c, sizeof c, p, sizeof p) == 0
            && strcmp (p, "/a:b") == 0,
        "a colon inside the path is part of the path");

    ok (cgroup_parse_proc_line ("", c, sizeof c, p, sizeof p) < 0, "empty line rejected");
    ok (cgroup_parse_proc_line (NULL, c, sizeof c, p, sizeof p) < 0, "NULL rejected");
    ok (cgroup_parse_proc_line ("x::/a", c, sizeof c, p, sizeof p) < 0, "non-numeric id rejected");
    ok (cgroup_parse_proc_line ("0:/a", c, sizeof c, p, sizeof p) < 0, "one colon rejected");
    ok (cgroup_parse_proc_line ("0x::/a", c, sizeof c, p, sizeof p) < 0,
        "garbage after the id rejected");
    ok (cgroup_parse_proc_line ("0::", c, sizeof c, p, sizeof p) < 0, "empty path rejected");
    ok (cgroup_parse_proc_line ("0::\n", c, sizeof c, p, sizeof p) < 0,
        "empty path with newline rejected");
    ok (cgroup_parse_proc_line ("0::relative", c, sizeof c, p, sizeof p) < 0,
        "relative path rejected");
    ok (cgroup_parse_proc_line ("3:cpu,cpuacct,memory,pids:/x", c, 8, p, sizeof p) < 0,
        "controllers longer than their buffer rejected");
    ok (cgroup_parse_proc_line ("0::/abcdefgh", c, sizeof c, p, 8) < 0,
        "path longer than its buffer rejected");
    ok (cgroup_parse_proc_line ("0::/abcdef", c, sizeof c, p, 8) == 0,
        "path that just fits accepted");
    is_str (cgroup_ctrl_name (CGROUP_MEMORY), "memory", "controller name");
    is_str (cgroup_ctrl_name (CGROUP_NCTRL), "?", "out-of-range controller name");
}

/* ---- detection ----------------------------------------------------------------------- */

#define V1_MOUNTS                                                                            \
    "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"                                \
    "26 25 0:23 / ROOT ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"                       \
    "27 26 0:24 / ROOT/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd\n"         \
    "28 26 0:25 / ROOT/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct\n"            \
    "29 26 0:26 / ROOT/cpuset rw shared:12 - cgroup cgroup rw,cpuset\n"                      \
    "30 26 0:27 / ROOT/memory rw shared:13 - cgroup cgroup rw,memory\n"                      \
    "31 26 0:28 / ROOT/freezer rw shared:14 - cgroup cgroup rw,freezer\n"                    \
    "32 26 0:29 / ROOT/pids rw shared:15 - cgroup cgroup rw,pids\n"                          \
    "33 26 0:30 / ROOT/net_cls rw shared:16 - cgroup cgroup rw,net_cls\n"

#define V1_SELF                                                                              \
    "12:pids:/system.slice/hr.service\n"                                                     \
    "8:memory:/system.slice/hr.service\n"                                                    \
    "6:freezer:/\n"                                                                          \
    "5:cpuset:/\n"                                                                           \
    "4:cpu,cpuacct:/system.slice\n"                                                          \
    "1:name=systemd:/system.slice/hr.service\n"                                              \
    "0::/system.slice/hr.service\n"

/* Replaces every "ROOT" in TEMPLATE by tmpdir/ROOTREL. */
static char *with_root (const char *tmpl, const char *rootrel)
{
    static char out[8192];
    char root[1024];
    size_t o = 0;
    snprintf (root, sizeof root, "%s", at (rootrel));
    for (const char *p = tmpl; *p && o + 1 < sizeof out;) {
        if (strncmp (p, "ROOT", 4) == 0) {
            o += (size_t)snprintf (out + o, sizeof out - o, "%s", root);
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

static void test_detect (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };
    char want[1024];

    /* Pure v2. */
    mkdirs ("d2");
    ok (detect ("d2",
                with_root ("25 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                           "30 25 0:26 / ROOT rw,nosuid shared:4 - cgroup2 cgroup2 rw\n",
                           "d2"),
                "0::/system.slice/hr.service\n", &cg, &e)
            == 0,
        "pure v2 detected: %s", e.text);
    is_int (cg.mode, CGROUP_MODE_V2, "mode is v2");
    is_str (cg.mount[0], at ("d2"), "v2 mount is ROOT");
    is_str (cg.base[0], "system.slice/hr.service", "v2 base is the runner cgroup, no leading /");

    snprintf (want, sizeof want, "%s/", at ("d2"));
    ok (cgroup_detect (want, at ("mountinfo"), at ("self"), &cg, &e) == 0
            && strcmp (cg.mount[0], at ("d2")) == 0,
        "trailing slash on ROOT ignored");

    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"), "0::/\n",
                &cg, &e)
            == 0
            && cg.mode == CGROUP_MODE_V2 && strcmp (cg.base[0], "") == 0,
        "runner in the root cgroup: base \"\"");

    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/a/b/\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "a/b") == 0,
        "trailing slash of the self path stripped");

    /* A cgroup namespace / bind mount: the mount's root is a sub-tree. */
    ok (detect ("d2", with_root ("30 25 0:26 /docker/abc ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/docker/abc/inner\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "inner") == 0,
        "mount root /docker/abc stripped from the self path (base \"%s\")", cg.base[0]);
    ok (detect ("d2", with_root ("30 25 0:26 /docker/abc ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/elsewhere\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "") == 0,
        "self path outside the mount root: base is the mount's top");
    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/a/../../etc\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "") == 0,
        "a self path with .. is not trusted");
    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"), "", &cg,
                &e)
            == 0
            && cg.mode == CGROUP_MODE_V2 && strcmp (cg.base[0], "") == 0,
        "empty self file: base \"\"");

    /* The "runner" leaf: stripped only when our hakuriver sibling exists. */
    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/svc/runner\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "svc/runner") == 0,
        "leaf named runner kept when svc/hakuriver does not exist");
    mkdirs ("d2/svc/runner");
    mkdirs ("d2/svc/hakuriver");
    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/svc/runner\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "svc") == 0,
        "runner leaf stripped when svc/hakuriver exists (base \"%s\")", cg.base[0]);
    mkdirs ("d2/runner");
    mkdirs ("d2/hakuriver");
    ok (detect ("d2", with_root ("30 25 0:26 / ROOT rw - cgroup2 cgroup2 rw\n", "d2"),
                "0::/runner\n", &cg, &e)
            == 0
            && strcmp (cg.base[0], "") == 0,
        "top-level runner leaf stripped to the root (base \"%s\")", cg.base[0]);
    rm_tree ("d2");

    /* Pure v1 (with a name=systemd hierarchy and an unknown net_cls). */
    mkdirs ("d1");
    ok (detect ("d1", with_root (V1_MOUNTS, "d1"), V1_SELF, &cg, &e) == 0, "v1 detected: %s",
        e.text);
    is_int (cg.mode, CGROUP_MODE_V1, "mode is v1");
    snprintf (want, sizeof want, "%s/cpu,cpuacct", at ("d1"));
    is_str (cg.mount[CGROUP_CPU], want, "cpu mount (co-mounted)");
    is_str (cg.mount[CGROUP_CPUACCT], want, "cpuacct mount is the same directory");
    snprintf (want, sizeof want, "%s/cpuset", at ("d1"));
    is_str (cg.mount[CGROUP_CPUSET], want, "cpuset mount (not mistaken for cpu)");
    snprintf (want, sizeof want, "%s/memory", at ("d1"));
    is_str (cg.mount[CGROUP_MEMORY], want, "memory mount");
    is_str (cg.base[CGROUP_MEMORY], "system.slice/hr.service", "memory base");
    is_str (cg.base[CGROUP_PIDS], "system.slice/hr.service", "pids base");
    is_str (cg.base[CGROUP_CPU], "system.slice", "cpu base from the cpu,cpuacct line");
    is_str (cg.base[CGROUP_CPUSET], "", "cpuset base at its root");
    is_str (cg.base[CGROUP_FREEZER], "", "freezer base at its root");

    /* Hybrid: v1 controllers plus cgroup2 at ROOT/unified -> v1. */
    ok (detect ("d1",
                with_root (V1_MOUNTS "34 26 0:31 / ROOT/unified rw - cgroup2 cgroup2 rw\n", "d1"),
                V1_SELF, &cg, &e)
            == 0,
        "hybrid detected: %s", e.text);
    is_int (cg.mode, CGROUP_MODE_V1, "hybrid (cgroup2 at ROOT/unified) is treated as v1");

    /* v1 with only some controllers: the others stay unmounted. */
    ok (detect ("d1",
                with_root ("30 26 0:27 / ROOT/memory rw - cgroup cgroup rw,memory\n", "d1"),
                "8:memory:/\n", &cg, &e)
            == 0
            && cg.mode == CGROUP_MODE_V1 && cg.mount[CGROUP_CPU][0] == '\0'
            && cg.mount[CGROUP_MEMORY][0] != '\0',
        "v1 with memory only");
    /* v1 controller without a /proc/self/cgroup line: base "" */
    ok (detect ("d1", with_root ("30 26 0:27 / ROOT/memory rw - cgroup cgroup rw,memory\n", "d1"),
                "0::/x\n", &cg, &e)
            == 0
            && strcmp (cg.base[CGROUP_MEMORY], "") == 0,
        "v1 controller absent from the self file uses its root");
    rm_tree ("d1");

    /* None. */
    e = (struct err){ 0 };
    ok (detect ("dn", "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/\n", &cg, &e) < 0,
        "no cgroup mounts: error");
    is_int (e.code, ENOENT, "no cgroup mounts: ENOENT");
    like (e.text, "no cgroup v2 mounted", "error text says what is missing");
    ok (detect ("dn", "30 25 0:26 / /elsewhere rw - cgroup2 cgroup2 rw\n"
                      "31 25 0:27 / /other/memory rw - cgroup cgroup rw,memory\n",
                "0::/\n", &cg, &e)
            < 0,
        "cgroups mounted outside ROOT are ignored");
    ok (detect ("dn", with_root ("30 25 0:26 / ROOT rw - cgroup cgroup rw,memory\n", "dn"),
                "0::/\n", &cg, &e)
            < 0,
        "a v1 hierarchy mounted at ROOT itself (not below it) is not used");
    ok (detect ("dn", "garbage\n\n30 23\n", "junk\n", &cg, &e) < 0,
        "malformed mountinfo lines are skipped, not fatal");

    ok (cgroup_detect (at ("dn"), at ("nonexistent"), at ("self"), &cg, &e) < 0
            && e.code == ENOENT,
        "missing mountinfo file: ENOENT");
    like (e.text, "nonexistent", "error names the mountinfo file");
    put ("mountinfo", "30 25 0:26 / /x rw - cgroup2 cgroup2 rw\n");
    ok (cgroup_detect ("/x", at ("mountinfo"), at ("nonexistent"), &cg, &e) < 0
            && e.code == ENOENT,
        "missing self file: ENOENT");
}

/* ---- name validation ------------------------------------------------------------------ */

static void test_rel_validation (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };
    char dirs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    int64_t k, l;
    static const char *const bad[] = {
        "", "/abs/task-1-1", "..", "../x", "a/../b", "a/..", ".", "./a", "a/./b", "a//b", "a/",
    };

    cgroup_ctx_v2 (&cg, at ("v"), "base");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = (struct err){ 0 };
        ok (cgroup_dirs (&cg, bad[i], dirs, &e) < 0 && e.code == EINVAL,
            "cgroup_dirs rejects `%s`", bad[i]);
    }
    ok (cgroup_dirs (&cg, NULL, dirs, &e) < 0, "cgroup_dirs rejects NULL");
    like (e.text, "invalid cgroup name", "error text");
    ok (cgroup_freeze (&cg, "../x", true, &e) < 0 && e.code == EINVAL, "freeze rejects ..");
    ok (cgroup_kill (&cg, "/abs", SIGTERM, &e) < 0 && e.code == EINVAL,
        "kill rejects an absolute path");
    ok (cgroup_oom (&cg, "a/../../b", &k, &l, &e) < 0 && e.code == EINVAL, "oom rejects ..");
    ok (cgroup_remove (&cg, "..", &e) < 0 && e.code == EINVAL, "remove rejects ..");
    is_int (cgroup_exists (&cg, "../.."), 0, "exists is 0 for an invalid name");

    ok (cgroup_dirs (&cg, "a..b/.x/x.", dirs, &e) == 1, "dots inside names are fine");
    ok (cgroup_dirs (&cg, "base/hakuriver/task-1-1", dirs, &e) == 1, "v2: one directory");
    char want[1024];
    snprintf (want, sizeof want, "%s/base/hakuriver/task-1-1", at ("v"));
    is_str (dirs[0], want, "v2 directory is mount/rel");

    static const char *const badnames[] = { "", "a/b", "..", ".", "/x" };
    char rel[CGROUP_PATH_MAX];
    for (size_t i = 0; i < sizeof badnames / sizeof badnames[0]; i++)
        ok (cgroup_create (&cg, badnames[i], NULL, rel, sizeof rel, &e) < 0 && e.code == EINVAL,
            "cgroup_create rejects name `%s`", badnames[i]);
    ok (cgroup_create (&cg, NULL, NULL, rel, sizeof rel, &e) < 0 && e.code == EINVAL,
        "cgroup_create rejects a NULL name");
    struct cgroup_limits neg = { .cores = -1 };
    ok (cgroup_create (&cg, "task-1-1", &neg, rel, sizeof rel, &e) < 0 && e.code == EINVAL,
        "negative cores rejected");
    struct cgroup_limits negm = { .memory_bytes = -5 };
    ok (cgroup_create (&cg, "task-1-1", &negm, rel, sizeof rel, &e) < 0 && e.code == EINVAL,
        "negative memory rejected");
    struct cgroup_ctx none = { .mode = CGROUP_MODE_NONE };
    ok (cgroup_create (&none, "task-1-1", NULL, rel, sizeof rel, &e) < 0 && e.code == ENOTSUP,
        "no hierarchy: ENOTSUP");
    ok (cgroup_oom (&none, "a", &k, &l, &e) < 0 && e.code == ENOTSUP, "oom without hierarchy");
    ok (cgroup_freeze (&none, "a", true, &e) < 0 && e.code == ENOTSUP,
        "freeze without hierarchy");
    ok (cgroup_kill (&none, "a", SIGTERM, &e) < 0 && e.code == ENOTSUP, "kill without hierarchy");
}

/* ---- v2 create ----------------------------------------------------------------------- */

/* A cgroup2 directory as the kernel would show it: controllers available, none enabled. */
static void v2_node (const char *rel, const char *controllers)
{
    char p[512];
    mkdirs (rel);
    snprintf (p, sizeof p, "%s/cgroup.controllers", rel);
    put (p, controllers);
    snprintf (p, sizeof p, "%s/cgroup.subtree_control", rel);
    put (p, "");
    snprintf (p, sizeof p, "%s/cgroup.procs", rel);
    put (p, "");
}

/* The task directory with the control files cgroup.c writes. */
static void v2_task_files (const char *rel)
{
    static const char *const files[] = {
        "cpu.max", "memory.max", "memory.swap.max", "memory.oom.group", "cpuset.cpus",
        "cpuset.mems", "cgroup.procs", "cgroup.freeze", "cgroup.events", "memory.events",
    };
    char p[512];
    mkdirs (rel);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf (p, sizeof p, "%s/%s", rel, files[i]);
        put (p, "");
    }
}

static void test_v2_create (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };
    char rel[CGROUP_PATH_MAX];

    v2_node ("v2", "cpuset cpu io memory hugetlb pids rdma misc");
    v2_node ("v2/sys.slice", "cpuset cpu io memory pids");
    put ("v2/sys.slice/cgroup.subtree_control", "cpu memory");
    v2_node ("v2/sys.slice/hr.service", "cpu memory pids");
    v2_node ("v2/sys.slice/hr.service/hakuriver", "cpu memory pids");
    v2_task_files ("v2/sys.slice/hr.service/hakuriver/task-7-2");
    cgroup_ctx_v2 (&cg, at ("v2"), "sys.slice/hr.service");

    struct cgroup_limits lim = {
        .cores = 3, .memory_bytes = 536870912, .cpus = "0-3,8", .mems = "1",
    };
    ok (cgroup_create (&cg, "task-7-2", &lim, rel, sizeof rel, &e) == 0, "v2 create: %s",
        e.text);
    is_str (rel, "sys.slice/hr.service/hakuriver/task-7-2", "rel is relative to the mount");
    is_str (get ("v2/cgroup.subtree_control"), "+cpu +memory +cpuset +pids",
            "root: every wanted available controller enabled (best effort)");
    is_str (get ("v2/sys.slice/cgroup.subtree_control"), "+cpuset +pids",
            "ancestor: only the missing controllers written");
    is_str (get ("v2/sys.slice/hr.service/cgroup.subtree_control"), "+cpu +memory +pids",
            "runner cgroup: controllers it has (no cpuset) enabled");
    is_str (get ("v2/sys.slice/hr.service/hakuriver/cgroup.subtree_control"),
            "+cpu +memory +pids", "hakuriver sub-tree enables them for the tasks");
    const char *td = "v2/sys.slice/hr.service/hakuriver/task-7-2";
    char p[512];
    snprintf (p, sizeof p, "%s/cpu.max", td);
    is_str (get (p), "300000 100000", "cpu.max = cores*100000 100000");
    snprintf (p, sizeof p, "%s/memory.max", td);
    is_str (get (p), "536870912", "memory.max = limit");
    snprintf (p, sizeof p, "%s/memory.swap.max", td);
    is_str (get (p), "0", "memory.swap.max = 0 (no swap)");
    snprintf (p, sizeof p, "%s/memory.oom.group", td);
    is_str (get (p), "1", "memory.oom.group = 1");
    snprintf (p, sizeof p, "%s/cpuset.cpus", td);
    is_str (get (p), "0-3,8", "cpuset.cpus written");
    snprintf (p, sizeof p, "%s/cpuset.mems", td);
    is_str (get (p), "1", "cpuset.mems written");
    is_int (cgroup_exists (&cg, rel), 1, "created cgroup exists");

    char dirs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    char want[1024];
    ok (cgroup_dirs (&cg, rel, dirs, &e) == 1, "v2 cgroup has one directory");
    snprintf (want, sizeof want, "%s/%s", at ("v2"), rel);
    is_str (dirs[0], want, "its directory");

    /* Controllers already enabled: nothing rewritten. */
    put ("v2/sys.slice/hr.service/cgroup.subtree_control", "cpu memory pids");
    put ("v2/sys.slice/hr.service/hakuriver/cgroup.subtree_control", "cpu memory pids");
    ok (cgroup_create (&cg, "task-7-2", &lim, rel, sizeof rel, &e) == 0,
        "create again over an existing directory");
    is_str (get ("v2/sys.slice/hr.service/cgroup.subtree_control"), "cpu memory pids",
            "enabled controllers are not written again");

    /* No limits at all: a bare directory suffices. */
    struct cgroup_limits none = { 0 };
    ok (cgroup_create (&cg, "task-8-1", &none, rel, sizeof rel, &e) == 0,
        "create without limits on a bare directory: %s", e.text);
    ok (is_dir ("v2/sys.slice/hr.service/hakuriver/task-8-1"), "task directory made");
    ok (cgroup_remove (&cg, rel, &e) == 0, "remove an empty task cgroup: %s", e.text);
    ok (!is_dir ("v2/sys.slice/hr.service/hakuriver/task-8-1"), "task directory removed");
    ok (cgroup_remove (&cg, rel, &e) == 0, "removing an absent cgroup is fine");
    is_int (cgroup_exists (&cg, rel), 0, "removed cgroup does not exist");
    ok (cgroup_create (&cg, "task-8-2", NULL, rel, sizeof rel, &e) == 0, "NULL limits = none");
    ok (cgroup_remove (&cg, rel, &e) == 0, "and removed");

    /* A limit whose file is missing fails and leaves nothing behind. */
    ok (cgroup_create (&cg, "task-9-1", &lim, rel, sizeof rel, &e) < 0,
        "create fails when cpu.max cannot be written");
    like (e.text, "cgroup `sys.slice/hr.service/hakuriver/task-9-1`", "error names the cgroup");
    like (e.text, "cpu.max", "error names the file");
    is_int (e.code, ENOENT, "error code from the failed write");
    ok (!is_dir ("v2/sys.slice/hr.service/hakuriver/task-9-1"),
        "a directory it made is removed on failure");

    /* memory.swap.max absent (swap accounting off): not an error. */
    v2_task_files ("v2/sys.slice/hr.service/hakuriver/task-10-1");
    unlink (at ("v2/sys.slice/hr.service/hakuriver/task-10-1/memory.swap.max"));
    unlink (at ("v2/sys.slice/hr.service/hakuriver/task-10-1/memory.oom.group"));
    struct cgroup_limits memonly = { .memory_bytes = 1000 };
    ok (cgroup_create (&cg, "task-10-1", &memonly, rel, sizeof rel, &e) == 0,
        "memory limit without memory.swap.max / memory.oom.group: %s", e.text);
    is_str (get ("v2/sys.slice/hr.service/hakuriver/task-10-1/memory.max"), "1000",
            "memory.max written");
    is_str (get ("v2/sys.slice/hr.service/hakuriver/task-10-1/cpu.max"), "",
            "no cores: cpu.max untouched");
    is_str (get ("v2/sys.slice/hr.service/hakuriver/task-10-1/cpuset.cpus"), "",
            "no NUMA: cpuset.cpus untouched (inherited)");

    /* REL buffer too small. */
    char small[8];
    ok (cgroup_create (&cg, "task-11-1", NULL, small, sizeof small, &e) < 0
            && e.code == ENAMETOOLONG,
        "rel buffer too small: ENAMETOOLONG");
    ok (!is_dir ("v2/sys.slice/hr.service/hakuriver/task-11-1"),
        "nothing made when rel does not fit");

    /* Runner in the root cgroup (base ""): the task lives at ROOT/hakuriver/<name>. */
    v2_node ("v2r", "cpu memory");
    cgroup_ctx_v2 (&cg, at ("v2r"), "");
    ok (cgroup_create (&cg, "task-12-1", NULL, rel, sizeof rel, &e) == 0,
        "create with base \"\": %s", e.text);
    ok (is_dir ("v2r/hakuriver/task-12-1"), "directory ROOT/hakuriver/task-12-1 made");
    is_str (get ("v2r/cgroup.subtree_control"), "+cpu +memory",
            "root cgroup enables controllers without evacuating");
    /* The name returned must be usable with the other functions. BUG (reported): it is
     * "/hakuriver/task-12-1", which rel_valid() rejects as absolute. */
    is_str (rel, "hakuriver/task-12-1", "rel for base \"\" is relative");
    is_str (cgroup_exists (&cg, rel) == 1 ? "exists" : "rejected", "exists",
              "rel for base \"\" is accepted by cgroup_exists");

    rm_tree ("v2");
    rm_tree ("v2r");
}

/* ---- v1 create ----------------------------------------------------------------------- */

static void v1_ctx (struct cgroup_ctx *cg, const char *top, bool with_memory)
{
    static const struct {
        enum cgroup_ctrl c;
        const char *dir;
    } m[] = {
        { CGROUP_CPU, "cpu,cpuacct" },  { CGROUP_CPUACCT, "cpu,cpuacct" },
        { CGROUP_CPUSET, "cpuset" },    { CGROUP_MEMORY, "memory" },
        { CGROUP_FREEZER, "freezer" },  { CGROUP_PIDS, "pids" },
    };
    memset (cg, 0, sizeof *cg);
    cg->mode = CGROUP_MODE_V1;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        if (m[i].c == CGROUP_MEMORY && !with_memory)
            continue;
        snprintf (cg->mount[m[i].c], sizeof cg->mount[0], "%s/%s/%s", tmpdir, top, m[i].dir);
        snprintf (cg->base[m[i].c], sizeof cg->base[0], "%s",
                  m[i].c == CGROUP_MEMORY ? "sys.slice/hr.service" : "");
    }
}

static void test_v1_create (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };
    char rel[CGROUP_PATH_MAX];

    mkdirs ("v1/cpu,cpuacct/hakuriver/task-3-1");
    put ("v1/cpu,cpuacct/hakuriver/task-3-1/cpu.cfs_period_us", "");
    put ("v1/cpu,cpuacct/hakuriver/task-3-1/cpu.cfs_quota_us", "-1");
    mkdirs ("v1/cpuset/hakuriver/task-3-1");
    put ("v1/cpuset/cpuset.cpus", "0-15\n");
    put ("v1/cpuset/cpuset.mems", "0-1\n");
    put ("v1/cpuset/hakuriver/cpuset.cpus", "");      /* the kernel starts them empty */
    put ("v1/cpuset/hakuriver/cpuset.mems", "");
    put ("v1/cpuset/hakuriver/task-3-1/cpuset.cpus", "");
    put ("v1/cpuset/hakuriver/task-3-1/cpuset.mems", "");
    mkdirs ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1");
    put ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1/memory.limit_in_bytes", "");
    put ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1/memory.memsw.limit_in_bytes", "");
    put ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1/memory.swappiness", "60");
    mkdirs ("v1/freezer");
    mkdirs ("v1/pids");
    v1_ctx (&cg, "v1", true);

    struct cgroup_limits lim = { .cores = 2, .memory_bytes = 1073741824, .cpus = "4-7" };
    ok (cgroup_create (&cg, "task-3-1", &lim, rel, sizeof rel, &e) == 0, "v1 create: %s",
        e.text);
    is_str (rel, "hakuriver/task-3-1", "v1 rel is relative to the runner's cgroups");
    is_str (get ("v1/cpu,cpuacct/hakuriver/task-3-1/cpu.cfs_period_us"), "100000",
            "cfs_period_us = 100000");
    is_str (get ("v1/cpu,cpuacct/hakuriver/task-3-1/cpu.cfs_quota_us"), "200000",
            "cfs_quota_us = cores * 100000");
    is_str (get ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1/memory.limit_in_bytes"),
            "1073741824", "memory.limit_in_bytes under the memory base");
    is_str (get ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1/"
                 "memory.memsw.limit_in_bytes"),
            "1073741824", "memsw limit = memory limit (no swap)");
    is_str (get ("v1/memory/sys.slice/hr.service/hakuriver/task-3-1/memory.swappiness"), "0",
            "swappiness 0");
    is_str (get ("v1/cpuset/hakuriver/cpuset.cpus"), "0-15", "hakuriver cpuset.cpus from parent");
    is_str (get ("v1/cpuset/hakuriver/cpuset.mems"), "0-1", "hakuriver cpuset.mems from parent");
    is_str (get ("v1/cpuset/hakuriver/task-3-1/cpuset.cpus"), "4-7",
            "task cpuset.cpus = the NUMA node's CPUs");
    is_str (get ("v1/cpuset/hakuriver/task-3-1/cpuset.mems"), "0-1",
            "task cpuset.mems inherited when not given");
    ok (is_dir ("v1/freezer/hakuriver/task-3-1"), "freezer directory made");
    ok (!is_dir ("v1/pids/hakuriver/task-3-1"), "no pids directory (no pids limit is set)");

    char dirs[CGROUP_NCTRL][CGROUP_PATH_MAX];
    is_int (cgroup_dirs (&cg, rel, dirs, &e), 4,
            "v1: one directory per distinct hierarchy used (cpu,cpuacct shared; no pids)");
    char want[1024];
    snprintf (want, sizeof want, "%s/v1/memory/sys.slice/hr.service/hakuriver/task-3-1", tmpdir);
    is_str (dirs[2], want, "memory directory includes the runner's memory cgroup");
    is_int (cgroup_exists (&cg, rel), 1, "v1 cgroup exists");

    /* A non-empty cpuset of the hakuriver directory is left alone; a task without a NUMA
     * binding or a CPU quota gets neither a cpuset nor a cpu cgroup. */
    put ("v1/cpuset/hakuriver/cpuset.cpus", "2-3");
    struct cgroup_limits nolim = { 0 };
    ok (cgroup_create (&cg, "task-3-2", &nolim, rel, sizeof rel, &e) == 0, "v1 create, no limits");
    ok (!is_dir ("v1/cpuset/hakuriver/task-3-2"), "no cpuset directory without a NUMA binding");
    ok (!is_dir ("v1/cpu,cpuacct/hakuriver/task-3-2"), "no cpu directory without a quota");
    ok (is_dir ("v1/freezer/hakuriver/task-3-2"), "freezer directory always");
    is_int (cgroup_dirs (&cg, rel, dirs, &e), 2, "memory and freezer only");
    struct cgroup_limits numa_only = { .mems = "1" };
    mkdirs ("v1/cpuset/hakuriver/task-3-3");                 /* with the kernel's files */
    put ("v1/cpuset/hakuriver/task-3-3/cpuset.cpus", "");
    put ("v1/cpuset/hakuriver/task-3-3/cpuset.mems", "");
    ok (cgroup_create (&cg, "task-3-3", &numa_only, rel, sizeof rel, &e) == 0,
        "v1 create with only cpuset.mems: %s", e.text);
    is_str (get ("v1/cpuset/hakuriver/cpuset.cpus"), "2-3", "existing cpuset.cpus kept");
    is_str (get ("v1/cpuset/hakuriver/task-3-3/cpuset.cpus"), "2-3",
            "task copies the hakuriver cpuset.cpus when only mems are asked");

    /* A controller a limit needs is missing. */
    v1_ctx (&cg, "v1", false);
    struct cgroup_limits mem = { .memory_bytes = 1 };
    ok (cgroup_create (&cg, "task-4-1", &mem, rel, sizeof rel, &e) < 0 && e.code == ENOTSUP,
        "memory limit without the memory controller: ENOTSUP");
    like (e.text, "memory controller", "error says which controller");
    ok (!is_dir ("v1/cpuset/hakuriver/task-4-1"), "nothing made");
    struct cgroup_ctx empty = { .mode = CGROUP_MODE_V1 };
    ok (cgroup_create (&empty, "task-4-2", NULL, rel, sizeof rel, &e) < 0 && e.code == ENOENT,
        "v1 with no controller mounted: ENOENT");
    struct cgroup_limits cores = { .cores = 1 };
    ok (cgroup_create (&empty, "task-4-3", &cores, rel, sizeof rel, &e) < 0 && e.code == ENOTSUP,
        "cpu limit without the cpu controller: ENOTSUP");

    /* Failure half way removes what was made: the cpuset parent file is unreadable. */
    v1_ctx (&cg, "v1", true);
    unlink (at ("v1/cpuset/cpuset.mems"));
    put ("v1/cpuset/hakuriver/cpuset.mems", "");
    struct cgroup_limits bind = { .cores = 1, .cpus = "0" };
    ok (cgroup_create (&cg, "task-5-1", &bind, rel, sizeof rel, &e) < 0,
        "cpuset without a readable parent fails");
    like (e.text, "cpuset.mems", "error names cpuset.mems");
    ok (!is_dir ("v1/cpu,cpuacct/hakuriver/task-5-1"), "directories made so far removed");

    /* No limits and bare directories: remove works on empty fake dirs. */
    put ("v1/cpuset/cpuset.mems", "0");
    put ("v1/cpuset/hakuriver/cpuset.mems", "0");
    mkdirs ("v1/cpuset/hakuriver/task-6-1");
    put ("v1/cpuset/hakuriver/task-6-1/cpuset.cpus", "");
    put ("v1/cpuset/hakuriver/task-6-1/cpuset.mems", "");
    ok (cgroup_create (&cg, "task-6-1", NULL, rel, sizeof rel, &e) == 0, "v1 create, no limits: %s",
        e.text);
    ok (is_dir ("v1/memory/sys.slice/hr.service/hakuriver/task-6-1"), "memory dir made");
    unlink (at ("v1/cpuset/hakuriver/task-6-1/cpuset.cpus"));
    unlink (at ("v1/cpuset/hakuriver/task-6-1/cpuset.mems"));
    ok (cgroup_remove (&cg, rel, &e) == 0, "v1 remove: %s", e.text);
    ok (!is_dir ("v1/memory/sys.slice/hr.service/hakuriver/task-6-1")
            && !is_dir ("v1/cpuset/hakuriver/task-6-1") && !is_dir ("v1/pids/hakuriver/task-6-1"),
        "every hierarchy's directory removed");
    /* A directory that still holds files cannot be removed (the kernel's would be EBUSY
     * while populated; a fake one is ENOTEMPTY, which is not retried). */
    ok (cgroup_remove (&cg, "hakuriver/task-3-1", &e) < 0 && e.code == ENOTEMPTY,
        "non-empty fake directory: remove reports the error");
    rm_tree ("v1");
}

/* ---- freeze / kill / OOM ------------------------------------------------------------- */

static void test_freeze (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };

    v2_task_files ("fz/t");
    cgroup_ctx_v2 (&cg, at ("fz"), "");
    put ("fz/t/cgroup.events", "populated 1\nfrozen 1\n");
    ok (cgroup_freeze (&cg, "t", true, &e) == 0, "v2 freeze: %s", e.text);
    is_str (get ("fz/t/cgroup.freeze"), "1", "cgroup.freeze = 1");
    ok (cgroup_freeze (&cg, "t", false, &e) == 0, "v2 thaw");
    is_str (get ("fz/t/cgroup.freeze"), "0", "cgroup.freeze = 0");

    put ("fz/t/cgroup.events", "populated 1\nfrozen 0\n");
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    ok (cgroup_freeze (&cg, "t", true, &e) < 0 && e.code == ETIMEDOUT,
        "v2 freeze that never completes: ETIMEDOUT");
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ok (secs >= 1.9 && secs < 10, "it waited about 2 s (%.2f s)", secs);
    like (e.text, "did not freeze", "error text");
    is_str (get ("fz/t/cgroup.freeze"), "0", "a failed freeze thaws again");

    put ("fz/t/cgroup.events", "populated 1\n");
    ok (cgroup_freeze (&cg, "t", true, &e) < 0 && e.code == ENOENT,
        "cgroup.events without `frozen`: error");
    ok (cgroup_freeze (&cg, "absent", true, &e) < 0 && e.code == ENOENT,
        "freezing an absent cgroup fails");

    /* v1: the fake freezer.state holds what was written, which reads back as FROZEN. */
    struct cgroup_ctx v1 = { .mode = CGROUP_MODE_V1 };
    snprintf (v1.mount[CGROUP_FREEZER], sizeof v1.mount[0], "%s", at ("fz1"));
    mkdirs ("fz1/hakuriver/task-1-1");
    put ("fz1/hakuriver/task-1-1/freezer.state", "THAWED\n");
    ok (cgroup_freeze (&v1, "hakuriver/task-1-1", true, &e) == 0, "v1 freeze: %s", e.text);
    is_str (get ("fz1/hakuriver/task-1-1/freezer.state"), "FROZEN", "freezer.state = FROZEN");
    ok (cgroup_freeze (&v1, "hakuriver/task-1-1", false, &e) == 0, "v1 thaw");
    is_str (get ("fz1/hakuriver/task-1-1/freezer.state"), "THAWED", "freezer.state = THAWED");
    struct cgroup_ctx v1nf = { .mode = CGROUP_MODE_V1 };
    snprintf (v1nf.mount[CGROUP_MEMORY], sizeof v1nf.mount[0], "%s", at ("fz1"));
    ok (cgroup_freeze (&v1nf, "hakuriver/task-1-1", true, &e) < 0 && e.code == ENOTSUP,
        "v1 without freezer: ENOTSUP");
    rm_tree ("fz");
    rm_tree ("fz1");
}

static pid_t spawn_sleeper (void)
{
    pid_t pid = fork ();
    if (pid == 0) {
        for (;;)
            pause ();
    }
    return pid;
}

static void test_kill (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };
    char buf[128];
    int st = 0;

    v2_task_files ("k/t");
    unlink (at ("k/t/cgroup.kill"));
    cgroup_ctx_v2 (&cg, at ("k"), "");

    pid_t a = spawn_sleeper (), b = spawn_sleeper ();
    snprintf (buf, sizeof buf, "%d\nnot-a-pid\n0\n-1\n%d\n\n", (int)a, (int)b);
    put ("k/t/cgroup.procs", buf);
    ok (cgroup_kill (&cg, "t", SIGTERM, &e) == 0, "kill with SIGTERM: %s", e.text);
    ok (waitpid (a, &st, 0) == a && WIFSIGNALED (st) && WTERMSIG (st) == SIGTERM,
        "first listed process got SIGTERM");
    ok (waitpid (b, &st, 0) == b && WIFSIGNALED (st) && WTERMSIG (st) == SIGTERM,
        "second listed process got SIGTERM (junk lines, 0 and -1 skipped)");

    put ("k/t/cgroup.procs", "");
    ok (cgroup_kill (&cg, "t", SIGKILL, &e) == 0, "kill of an empty cgroup succeeds");
    put ("k/t/cgroup.kill", "");
    ok (cgroup_kill (&cg, "t", SIGKILL, &e) == 0, "SIGKILL with cgroup.kill");
    is_str (get ("k/t/cgroup.kill"), "1", "v2 SIGKILL writes 1 to cgroup.kill");
    put ("k/t/cgroup.kill", "");
    ok (cgroup_kill (&cg, "t", SIGTERM, &e) == 0, "SIGTERM with cgroup.kill present");
    is_str (get ("k/t/cgroup.kill"), "", "SIGTERM does not use cgroup.kill");

    ok (cgroup_kill (&cg, "absent", SIGTERM, &e) < 0 && e.code == ENOENT,
        "absent cgroup: ENOENT");
    like (e.text, "does not exist", "error text");
    unlink (at ("k/t/cgroup.procs"));
    ok (cgroup_kill (&cg, "t", SIGTERM, &e) < 0 && e.code == ENOENT,
        "unreadable cgroup.procs is an error");

    /* v1: SIGKILL thaws a frozen cgroup so its processes can die. */
    struct cgroup_ctx v1 = { .mode = CGROUP_MODE_V1 };
    snprintf (v1.mount[CGROUP_MEMORY], sizeof v1.mount[0], "%s", at ("k1/memory"));
    snprintf (v1.mount[CGROUP_FREEZER], sizeof v1.mount[0], "%s", at ("k1/freezer"));
    mkdirs ("k1/memory/hakuriver/t");
    mkdirs ("k1/freezer/hakuriver/t");
    pid_t c = spawn_sleeper ();
    snprintf (buf, sizeof buf, "%d\n", (int)c);
    put ("k1/memory/hakuriver/t/cgroup.procs", buf);
    put ("k1/freezer/hakuriver/t/freezer.state", "FROZEN\n");
    ok (cgroup_kill (&v1, "hakuriver/t", SIGKILL, &e) == 0, "v1 SIGKILL: %s", e.text);
    ok (waitpid (c, &st, 0) == c && WIFSIGNALED (st) && WTERMSIG (st) == SIGKILL,
        "listed process got SIGKILL");
    is_str (get ("k1/freezer/hakuriver/t/freezer.state"), "THAWED",
            "v1 SIGKILL thaws a frozen cgroup");
    put ("k1/freezer/hakuriver/t/freezer.state", "FROZEN\n");
    ok (cgroup_kill (&v1, "hakuriver/t", SIGTERM, &e) == 0, "v1 SIGTERM (pid already gone)");
    is_str (get ("k1/freezer/hakuriver/t/freezer.state"), "FROZEN", "SIGTERM does not thaw");
    rm_tree ("k");
    rm_tree ("k1");
}

static void test_oom (void)
{
    struct cgroup_ctx cg;
    struct err e = { 0 };
    int64_t kills = -1, limit = -1;

    cgroup_ctx_v2 (&cg, at ("o"), "");
    mkdirs ("o/t");
    put ("o/t/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n");
    put ("o/t/memory.max", "536870912\n");
    ok (cgroup_oom (&cg, "t", &kills, &limit, &e) == 0, "v2 OOM counters: %s", e.text);
    is_int (kills, 1, "oom_kill read (not `oom`)");
    is_int (limit, 536870912, "memory.max read");
    put ("o/t/memory.events", "oom 0\noom_kill 0\n");
    put ("o/t/memory.max", "max\n");
    ok (cgroup_oom (&cg, "t", &kills, &limit, &e) == 0 && kills == 0 && limit == 0,
        "no OOM, memory.max = max: limit 0");
    unlink (at ("o/t/memory.max"));
    ok (cgroup_oom (&cg, "t", &kills, &limit, &e) == 0 && limit == 0,
        "missing memory.max: limit 0, not an error");
    put ("o/t/memory.events", "low 0\noom 3\n");
    ok (cgroup_oom (&cg, "t", &kills, &limit, &e) < 0 && e.code == ENOENT,
        "memory.events without oom_kill: ENOENT");
    put ("o/t/memory.events", "oom_kill x\n");
    ok (cgroup_oom (&cg, "t", &kills, &limit, &e) < 0, "non-numeric oom_kill rejected");
    ok (cgroup_oom (&cg, "absent", &kills, &limit, &e) < 0 && e.code == ENOENT,
        "absent cgroup: ENOENT");
    like (e.text, "memory.events", "error names memory.events");

    struct cgroup_ctx v1 = { .mode = CGROUP_MODE_V1 };
    snprintf (v1.mount[CGROUP_MEMORY], sizeof v1.mount[0], "%s", at ("o1"));
    snprintf (v1.base[CGROUP_MEMORY], sizeof v1.base[0], "svc");
    mkdirs ("o1/svc/hakuriver/t");
    put ("o1/svc/hakuriver/t/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
    put ("o1/svc/hakuriver/t/memory.limit_in_bytes", "104857600\n");
    ok (cgroup_oom (&v1, "hakuriver/t", &kills, &limit, &e) == 0, "v1 OOM counters: %s", e.text);
    is_int (kills, 4, "v1 oom_kill (oom_kill_disable not mistaken for it)");
    is_int (limit, 104857600, "v1 memory.limit_in_bytes");
    put ("o1/svc/hakuriver/t/memory.limit_in_bytes", "9223372036854771712\n");
    ok (cgroup_oom (&v1, "hakuriver/t", &kills, &limit, &e) == 0 && limit == 0,
        "v1 unlimited (near 2^63) reads as 0");
    put ("o1/svc/hakuriver/t/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
    ok (cgroup_oom (&v1, "hakuriver/t", &kills, &limit, &e) < 0,
        "v1 kernel without an oom_kill counter (< 4.13): error");
    struct cgroup_ctx v1nm = { .mode = CGROUP_MODE_V1 };
    snprintf (v1nm.mount[CGROUP_CPU], sizeof v1nm.mount[0], "%s", at ("o1"));
    ok (cgroup_oom (&v1nm, "hakuriver/t", &kills, &limit, &e) < 0,
        "v1 without the memory controller: error");
    rm_tree ("o");
    rm_tree ("o1");
}

int main (void)
{
    if (!mkdtemp (tmpdir)) {
        perror ("mkdtemp");
        return 1;
    }
    test_mountinfo_line ();
    test_proc_line ();
    test_detect ();
    test_rel_validation ();
    test_v2_create ();
    test_v1_create ();
    test_freeze ();
    test_kill ();
    test_oom ();
    rm_tree ("");
    return done_testing ();
}
