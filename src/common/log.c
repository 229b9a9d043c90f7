/* log.c - leveled logging to stderr or a file */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

enum log_level log_level_current = LOG_LEVEL_INFO;
static const char *log_prog = "hakuriver";
static FILE *log_sink;

void log_init (const char *progname, enum log_level level)
{
    log_prog = progname;
    log_level_current = level;
}

int log_open_file (const char *path)
{
    FILE *f = fopen (path, "ae");
    if (!f)
        return -1;
    setvbuf (f, NULL, _IOLBF, 0);
    if (log_sink && log_sink != stderr)
        fclose (log_sink);
    log_sink = f;
    return 0;
}

int log_file_fd (void)
{
    return log_sink && log_sink != stderr ? fileno (log_sink) : -1;
}

int log_level_parse (const char *s, enum log_level *out)
{
    static const char *names[] = { "error", "warning", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcmp (s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_write (enum log_level level, const char *fmt, ...)
{
    static const char *tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
    int saved = errno;
    FILE *out = log_sink ? log_sink : stderr;
    struct timeval tv;
    struct tm tm;
    char ts[32];
    gettimeofday (&tv, NULL);
    localtime_r (&tv.tv_sec, &tm);
    strftime (ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    char line[2048];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    fprintf (out, "%s.%03d %s[%s] %s\n", ts, (int)(tv.tv_usec / 1000), log_prog,
             tags[level], line);
    errno = saved;
}

char *log_escape (const char *s, char *buf, unsigned n)
{
    unsigned o = 0;
    if (n == 0)
        return buf;
    for (; s && *s && o + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            o += (unsigned)snprintf (buf + o, n - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}
