/* output.h - what the user CLIs print: aligned tables, key/value blocks, JSON, sizes, times */
#ifndef HR_CLI_OUTPUT_H
#define HR_CLI_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

typedef struct output_table output_table_t;

/* Creates a table with NCOLS columns named by HEADERS (copied). Never fails. */
output_table_t *output_table_create (int ncols, const char *const *headers);

/* Appends a row of NCOLS cells (NULL prints as "-"). Cells are copied with control
 * characters replaced by '?', so that a task's command cannot drive the terminal. */
void output_table_add (output_table_t *t, const char *const *cells);

/* Writes the table: columns separated by two spaces, every column but the last padded. */
void output_table_print (const output_table_t *t, FILE *out);

void output_table_destroy (output_table_t *t);

/* Writes "KEY:<pad>VALUE\n" with KEY padded to 16 columns, VALUE cleaned as in table cells
 * (NULL prints as "-"). */
void output_kv (FILE *out, const char *key, const char *value);

/* Writes V pretty-printed (indent 2, keys in host order, non-ASCII kept) and a newline. */
void output_json (FILE *out, const json_t *v);

/* Returns a new string with control characters replaced by '?'. Caller frees. */
char *output_clean (const char *s);

/* Formats BYTES 1000-based like the --memory flag: "512", "1.5K", "12.0M", "3.2G", "1.1T".
 * Writes into BUF (at least 16 bytes) and returns BUF. */
char *output_size (int64_t bytes, char *buf, size_t n);

/* Shortens a host time "2025-06-01T10:00:00.123456" to "2025-06-01 10:00:00". Writes into BUF
 * (at least 20 bytes) and returns BUF; NULL or empty gives "-". */
char *output_time (const char *iso, char *buf, size_t n);

/* Renders a JSON scalar for display: strings as is, integers and reals as numbers, true/false,
 * null and missing as NULL. Returns a new string or NULL; caller frees. */
char *output_scalar (const json_t *v);

/* Joins COMMAND and the string items of ARGUMENTS with spaces; an argument containing a space,
 * a quote or nothing is shown in single quotes. Returns a new string; caller frees. */
char *output_command_line (const json_t *command, const json_t *arguments);

#endif
