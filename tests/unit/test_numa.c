/* test_numa.c - CPU list parsing/formatting and NUMA topology from a fake sysfs tree */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/tap.h"
#include "runner/numa.h"

static char tmpdir[] = "/tmp/test_numa.XXXXXX";

static void put (const char *rel, const char *text)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen (path, "w");
    if (!f) {
        perror (path);
        exit (1);
    }
    fputs (text, f);
    fclose (f);
}

static void make_dir (const char *rel)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", tmpdir, rel);
    if (mkdir (path, 0755) < 0 && errno != EEXIST) {
        perror (path);
        exit (1);
    }
}

static const char *at (const char *rel)
{
    static char buf[512];
    snprintf (buf, sizeof buf, "%s/%s", tmpdir, rel);
    return buf;
}

/* Parses TEXT and formats the result back; "ERR" when parsing fails. */
static const char *roundtrip (const char *text)
{
    static char buf[256];
    int *cpus = NULL;
    size_t n = 0;
    struct err e = { 0 };
    if (numa_parse_cpulist (text, &cpus, &n, &e) < 0)
        return "ERR";
    if (numa_format_cpulist (cpus, n, buf, sizeof buf, &e) < 0)
        snprintf (buf, sizeof buf, "FMTERR");
    free (cpus);
    return buf;
}

static void test_parse (void)
{
    int *cpus = NULL;
    size_t n = 99;
    struct err e = { 0 };

    ok (numa_parse_cpulist ("0-3,8,10-11\n", &cpus, &n, &e) == 0, "kernel cpulist parses");
    is_int (n, 7, "seven CPUs");
    ok (n == 7 && cpus[0] == 0 && cpus[3] == 3 && cpus[4] == 8 && cpus[5] == 10 && cpus[6] == 11,
        "ids expanded in order");
    free (cpus);

    cpus = (int *)1;
    n = 99;
    ok (numa_parse_cpulist ("", &cpus, &n, &e) == 0 && n == 0 && cpus == NULL,
        "empty list: no CPUs, NULL array");
    ok (numa_parse_cpulist ("\n", &cpus, &n, &e) == 0 && n == 0 && cpus == NULL,
        "bare newline (memory-only node): no CPUs");
    ok (numa_parse_cpulist (" \t\n", &cpus, &n, &e) == 0 && n == 0, "whitespace only: no CPUs");

    is_str (roundtrip ("3,1,2,1"), "1-3", "unordered ids sorted and de-duplicated");
    is_str (roundtrip ("0-3,2-5"), "0-5", "overlapping ranges merged");
    is_str (roundtrip ("5-5"), "5", "one-element range");
    is_str (roundtrip (" 0-1 \n"), "0-1", "surrounding blanks accepted");
    is_str (roundtrip ("0,2,4,6"), "0,2,4,6", "sparse list kept");
    is_str (roundtrip ("8191"), "8191", "highest accepted id");
    is_str (roundtrip ("0-8191"), "0-8191", "full range of ids");

    static const char *const bad[] = {
        "3-1", "8192", "0-8192", "99999999999999999999", "-1", "0-", "-", ",", "0,", ",0",
        "0,,1", "0--2", "a", "0x1", "1 2", "1\n2", "+1", "1-2-3", "0;1", "1.5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int *keep = (int *)&n;
        size_t kn = 42;
        e = (struct err){ 0 };
        char shown[64];
        size_t o = 0;
        for (const char *c = bad[i]; *c && o + 3 < sizeof shown; c++) {
            if (*c == '\n') {
                shown[o++] = '\\';
                shown[o++] = 'n';
            } else {
                shown[o++] = *c;
            }
        }
        shown[o] = '\0';
        int rc = numa_parse_cpulist (bad[i], &keep, &kn, &e);
        ok (rc < 0 && e.code == EINVAL && keep == (int *)&n && kn == 42,
            "`%s` rejected (EINVAL, outputs untouched)", shown);
    }
    like (e.text, "malformed CPU list", "error text");
    ok (numa_parse_cpulist (NULL, &cpus, &n, &e) < 0 && e.code == EINVAL, "NULL rejected");

    char huge[300];
    memset (huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    ok (numa_parse_cpulist (huge, &cpus, &n, &e) < 0, "300-digit id rejected");
    ok (strlen (e.text) < 200, "error quotes at most 64 characters of the input");
}

static void test_format (void)
{
    char buf[64];
    struct err e = { 0 };
    const int a[] = { 0, 1, 2, 3, 8, 10, 11 };

    ok (numa_format_cpulist (a, 7, buf, sizeof buf, &e) == 0, "format succeeds");
    is_str (buf, "0-3,8,10-11", "ranges collapsed");
    const int two[] = { 4, 5 };
    ok (numa_format_cpulist (two, 2, buf, sizeof buf, &e) == 0, "two adjacent ids");
    is_str (buf, "4-5", "two adjacent ids written as a range");
    const int one[] = { 7 };
    ok (numa_format_cpulist (one, 1, buf, sizeof buf, &e) == 0 && strcmp (buf, "7") == 0,
        "single id");
    strcpy (buf, "junk");
    ok (numa_format_cpulist (NULL, 0, buf, sizeof buf, &e) == 0 && buf[0] == '\0',
        "no CPUs: empty string");

    const int r[] = { 0, 1, 2, 3 };
    ok (numa_format_cpulist (r, 4, buf, 4, &e) == 0 && strcmp (buf, "0-3") == 0,
        "exact fit (3 chars + NUL)");
    ok (numa_format_cpulist (r, 4, buf, 3, &e) < 0 && e.code == ERANGE, "one byte short: ERANGE");
    is_str (buf, "", "buffer emptied on ERANGE");
    like (e.text, "too small", "error text");
    ok (numa_format_cpulist (a, 7, buf, 6, &e) < 0 && e.code == ERANGE,
        "a later item does not fit: ERANGE");
    is_str (buf, "", "no half-written list left");
    ok (numa_format_cpulist (a, 7, buf, 0, &e) < 0 && e.code == ERANGE, "size 0: ERANGE");
}

static void test_topology (void)
{
    struct numa_topology t = { 0 };
    struct err e = { 0 };

    ok (numa_topology_read (at ("nonexistent"), &t, &e) == 0 && t.n == 0 && t.nodes == NULL,
        "missing root: no nodes, not an error");
    json_t *j = numa_topology_json (&t);
    ok (json_is_null (j), "no nodes: JSON null");
    json_decref (j);
    j = numa_topology_json (NULL);
    ok (json_is_null (j), "NULL topology: JSON null");
    json_decref (j);

    make_dir ("sys");
    ok (numa_topology_read (at ("sys"), &t, &e) == 0 && t.n == 0, "empty root: no nodes");

    make_dir ("sys/node0");
    put ("sys/node0/cpulist", "0-3\n");
    put ("sys/node0/meminfo", "Node 0 MemTotal:       16384000 kB\n"
                              "Node 0 MemFree:         8000000 kB\n");
    make_dir ("sys/node1");
    put ("sys/node1/cpulist", "\n");
    put ("sys/node1/meminfo", "Node 1 MemFree:   1 kB\nNode 1 MemTotal:   2048 kB\n");
    make_dir ("sys/node2");          /* no files at all */
    make_dir ("sys/node10");
    put ("sys/node10/cpulist", "8,9\n");
    put ("sys/node10/meminfo", "Node 10 MemTotal: lots kB\n");
    /* Entries that are not node directories. */
    put ("sys/possible", "0-10\n");
    put ("sys/has_cpu", "0,10\n");
    make_dir ("sys/node");
    make_dir ("sys/nodex");
    make_dir ("sys/node1x");
    make_dir ("sys/node-1");
    make_dir ("sys/node99999");

    ok (numa_topology_read (at ("sys"), &t, &e) == 0, "fake sysfs read: %s", e.text);
    is_int (t.n, 4, "four node directories (node0, node1, node2, node10)");
    if (t.n == 4) {
        is_int (t.nodes[0].id, 0, "sorted: node0 first");
        is_int (t.nodes[1].id, 1, "node1 second");
        is_int (t.nodes[2].id, 2, "node2 third");
        is_int (t.nodes[3].id, 10, "node10 last (numeric order)");
        is_int (t.nodes[0].ncpus, 4, "node0 has 4 CPUs");
        is_int (t.nodes[0].memory_bytes, 16384000LL * 1024, "node0 MemTotal in bytes");
        is_int (t.nodes[1].ncpus, 0, "node1 is memory-only");
        ok (t.nodes[1].cpus == NULL, "memory-only node has no CPU array");
        is_int (t.nodes[1].memory_bytes, 2048LL * 1024, "node1 MemTotal found after MemFree");
        is_int (t.nodes[2].ncpus, 0, "node without cpulist: no CPUs");
        is_int (t.nodes[2].memory_bytes, 0, "node without meminfo: 0 bytes");
        is_int (t.nodes[3].memory_bytes, 0, "malformed MemTotal: 0 bytes");
    } else {
        skip (12, "unexpected node count");
    }
    const struct numa_node *nd = numa_topology_find (&t, 10);
    ok (nd && nd->ncpus == 2 && nd->cpus[0] == 8 && nd->cpus[1] == 9, "find node 10");
    ok (numa_topology_find (&t, 3) == NULL, "find absent node: NULL");
    ok (numa_topology_find (NULL, 0) == NULL, "find in NULL topology: NULL");

    j = numa_topology_json (&t);
    ok (json_is_object (j) && json_object_size (j) == 4, "JSON object with four nodes");
    char *dump = json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT);
    is_str (dump,
            "{\"0\":{\"cores\":[0,1,2,3],\"memory_bytes\":16777216000},"
            "\"1\":{\"cores\":[],\"memory_bytes\":2097152},"
            "\"10\":{\"cores\":[8,9],\"memory_bytes\":0},"
            "\"2\":{\"cores\":[],\"memory_bytes\":0}}",
            "0.3 wire shape: string node ids -> {cores, memory_bytes}");
    free (dump);
    json_t *n0 = json_object_get (j, "0");
    ok (json_is_array (json_object_get (n0, "cores"))
            && json_is_integer (json_object_get (n0, "memory_bytes")),
        "cores is an array, memory_bytes an integer");
    json_decref (j);

    /* A malformed cpulist fails the whole read and leaves *OUT alone. */
    make_dir ("sys/node3");
    put ("sys/node3/cpulist", "0-3,x\n");
    struct numa_topology keep = t;
    ok (numa_topology_read (at ("sys"), &t, &e) < 0, "malformed cpulist: error");
    like (e.text, "node3/cpulist", "error names the file");
    like (e.text, "malformed CPU list", "error says why");
    ok (t.nodes == keep.nodes && t.n == keep.n, "output untouched on error");
    put ("sys/node3/cpulist", "3-1\n");
    ok (numa_topology_read (at ("sys"), &t, &e) < 0, "reversed range in cpulist: error");

    numa_topology_clear (&t);
    ok (t.nodes == NULL && t.n == 0, "clear zeroes the topology");
    numa_topology_clear (&t);
    numa_topology_clear (NULL);
    ok (1, "clear twice and clear(NULL) are safe");

    put ("sys/notadir", "");
    ok (numa_topology_read (at ("sys/notadir"), &t, &e) < 0 && e.code == ENOTDIR,
        "root that is a file: ENOTDIR");

    /* The real machine: whatever it has must parse. */
    struct numa_topology real = { 0 };
    ok (numa_topology_read (NULL, &real, &e) == 0, "real sysfs parses (%zu nodes): %s", real.n,
        e.text);
    numa_topology_clear (&real);
}

int main (void)
{
    if (!mkdtemp (tmpdir)) {
        perror ("mkdtemp");
        return 1;
    }
    test_parse ();
    test_format ();
    test_topology ();
    char cmd[600];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmpdir);
    return done_testing ();
}
