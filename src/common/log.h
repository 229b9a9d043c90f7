/* log.h - leveled logging with escaping of user-controlled text (Redis serverLog, tmux stravis) */
#ifndef HR_COMMON_LOG_H
#define HR_COMMON_LOG_H

enum log_level { LOG_LEVEL_ERR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern enum log_level log_level_current;

/* Sets the program name shown in each line and the minimum level. */
void log_init (const char *progname, enum log_level level);
/* Opens PATH for appending as the sink (default: stderr). Returns 0 or -1. */
int log_open_file (const char *path);
/* The descriptor of the file opened by log_open_file, or -1 when logging goes to stderr. */
int log_file_fd (void);
/* Parses "error|warning|info|debug". Returns 0 or -1. */
int log_level_parse (const char *s, enum log_level *out);
void log_write (enum log_level level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
/* Copies S into BUF (size N), replacing control characters with \xNN escapes so that
 * user-controlled text cannot forge log lines. Returns BUF. */
char *log_escape (const char *s, char *buf, unsigned n);

#define log_at(lvl, ...) \
    do { if ((lvl) <= log_level_current) log_write ((lvl), __VA_ARGS__); } while (0)
#define log_err(...)   log_at (LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)  log_at (LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_at (LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at (LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
