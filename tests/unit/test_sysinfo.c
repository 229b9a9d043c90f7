/* test_sysinfo.c - /proc and /sys parsing for runner metrics, from fixed strings and fake trees */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tap.h"
#include "runner/sysinfo.h"

static char tmpdir[] = "/tmp/test_sysinfo.XXXXXX";

static void write_file (const char *rel, const char *text)
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

static void test_meminfo (void)
{
    struct sysinfo_mem m;
    struct err e = { 0 };
    const char *modern = "MemTotal:        4155604 kB\n"
                         "MemFree:          100000 kB\n"
                         "MemAvailable:    3155604 kB\n"
                         "Buffers:           10000 kB\n"
                         "Cached:            20000 kB\n";
    ok (sysinfo_parse_meminfo (modern, &m, &e) == 0, "modern meminfo parses");
    is_int (m.total_bytes, 4155604LL * 1024, "total from MemTotal (kB -> bytes)");
    is_int (m.available_bytes, 3155604LL * 1024, "available from MemAvailable");
    is_int (m.used_bytes, 1000000LL * 1024, "used = total - available");
    ok (m.percent > 24.06 && m.percent < 24.07, "percent = used/total (%.3f)", m.percent);

    const char *old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
    ok (sysinfo_parse_meminfo (old, &m, &e) == 0, "meminfo without MemAvailable parses");
    is_int (m.available_bytes, 400LL * 1024, "available falls back to free+buffers+cached");
    is_int (m.used_bytes, 600LL * 1024, "used on an old kernel");

    struct sysinfo_mem untouched = { .total_bytes = 42 };
    m = untouched;
    ok (sysinfo_parse_meminfo ("MemFree: 1 kB\n", &m, &e) < 0, "missing MemTotal is an error");
    like (e.text, "MemTotal", "error names MemTotal");
    is_int (m.total_bytes, 42, "output untouched on failure");
    ok (sysinfo_parse_meminfo ("MemTotal: lots kB\n", &m, &e) < 0, "malformed MemTotal fails");
    ok (sysinfo_parse_meminfo ("MemTotal: 0 kB\n", &m, &e) < 0, "zero MemTotal fails");
    ok (sysinfo_parse_meminfo ("", &m, &e) < 0, "empty text fails");
    ok (sysinfo_parse_meminfo ("MemTotalX: 5 kB\nMemTotal: 8 kB\n", &m, &e) == 0
            && m.total_bytes == 8 * 1024,
        "a key that only starts with MemTotal is not MemTotal");
    ok (sysinfo_parse_meminfo ("MemTotal: 100 kB\nMemAvailable: 200 kB\n", &m, &e) == 0
            && m.used_bytes == 0,
        "available > total is clamped");

    int rc = sysinfo_read_meminfo (NULL, &m, &e);
    ok (rc == 0 && m.total_bytes > 0, "real /proc/meminfo: %lld bytes", (long long)m.total_bytes);
    ok (sysinfo_read_meminfo ("/nonexistent/meminfo", &m, &e) < 0 && e.code == ENOENT,
        "missing file gives ENOENT");
}

static void test_stat (void)
{
    struct sysinfo_cpu_sample a, b;
    struct err e = { 0 };
    const char *s1 = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n";
    const char *s2 = "cpu  200 0 100 1500 100 10 10 30 0 0\n";
    ok (sysinfo_parse_stat (s1, &a, &e) == 0, "stat line parses");
    is_int (a.busy, 150, "busy = user+nice+system+irq+softirq+steal");
    is_int (a.total, 1000, "total = busy + idle + iowait");
    ok (sysinfo_parse_stat (s2, &b, &e) == 0, "second sample parses");
    double p = sysinfo_cpu_percent (&a, &b);
    /* busy 150 -> 350 (+200), total 1000 -> 1950 (+950) */
    ok (p > 21.05 && p < 21.06, "cpu percent from deltas (%.3f)", p);
    ok (sysinfo_cpu_percent (&a, &a) < 0, "no elapsed ticks: undefined");
    ok (sysinfo_cpu_percent (&b, &a) < 0, "counters going backwards: undefined");

    ok (sysinfo_parse_stat ("intr 1 2 3\ncpu  1 2 3 4\n", &a, &e) == 0 && a.total == 10,
        "cpu line need not be first; 4 fields (old kernels) accepted");
    ok (sysinfo_parse_stat ("cpu0 1 2 3 4\n", &a, &e) < 0, "per-cpu lines alone are an error");
    like (e.text, "cpu", "error mentions the cpu line");
    ok (sysinfo_parse_stat ("cpu  1 2\n", &a, &e) < 0, "too few fields fail");
    ok (sysinfo_parse_stat ("cpu  1 x 3 4\n", &a, &e) < 0, "non-numeric field fails");
    ok (sysinfo_parse_stat ("", &a, &e) < 0, "empty text fails");
    ok (sysinfo_read_stat (NULL, &a, &e) == 0 && a.total > 0, "real /proc/stat parses");
}

static void test_temperatures (void)
{
    char root[512];
    make_dir ("thermal");
    make_dir ("thermal/thermal_zone0");
    make_dir ("thermal/thermal_zone1");
    make_dir ("thermal/thermal_zone2");
    make_dir ("thermal/cooling_device0");
    write_file ("thermal/thermal_zone0/temp", "40000\n");
    write_file ("thermal/thermal_zone1/temp", "60500\n");
    write_file ("thermal/thermal_zone2/temp", "n/a\n"); /* unreadable sensors are skipped */
    snprintf (root, sizeof root, "%s/thermal", tmpdir);
    double avg = -1, max = -1;
    is_int (sysinfo_temperatures (root, &avg, &max), 2, "two readable sensors");
    ok (avg > 50.24 && avg < 50.26, "average temperature %.2f", avg);
    ok (max > 60.49 && max < 60.51, "max temperature %.2f", max);
    avg = max = -7;
    is_int (sysinfo_temperatures ("/nonexistent", &avg, &max), 0, "no sensors: 0");
    ok (avg == -7 && max == -7, "outputs untouched without sensors");
}

int main (void)
{
    if (!mkdtemp (tmpdir)) {
        perror ("mkdtemp");
        return 1;
    }
    int n = sysinfo_cpu_count ();
    ok (n > 0, "cpu count is positive (%d)", n);
    test_meminfo ();
    test_stat ();
    test_temperatures ();
    char cmd[600];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
        diag ("could not remove %s", tmpdir);
    return done_testing ();
}
