/* output.c - what the user CLIs print: aligned tables, key/value blocks, JSON, sizes, times */
#include "cli/output.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct output_table {
    int ncols;
    char **headers;
    char ***rows;
    size_t nrows;
};

char *output_clean (const char *s)
{
    char *c = xstrdup (s ? s : "");
    for (unsigned char *p = (unsigned char *)c; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

output_table_t *output_table_create (int ncols, const char *const *headers)
{
    output_table_t *t = xcalloc (1, sizeof *t);
    t->ncols = ncols;
    t->headers = xcalloc ((size_t)ncols, sizeof *t->headers);
    for (int i = 0; i < ncols; i++)
        t->headers[i] = xstrdup (headers[i]);
    return t;
}

void output_table_add (output_table_t *t, const char *const *cells)
{
    char **row = xcalloc ((size_t)t->ncols, sizeof *row);
    for (int i = 0; i < t->ncols; i++)
        row[i] = output_clean (cells[i] ? cells[i] : "-");
    t->rows = xreallocarray (t->rows, t->nrows + 1, sizeof *t->rows);
    t->rows[t->nrows++] = row;
}

/* Display width: count UTF-8 lead bytes, not continuation bytes, so that names in other
 * scripts do not push the columns out (double-width characters are not accounted for). */
static size_t width (const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void print_row (char *const *cells, const size_t *widths, int ncols, FILE *out)
{
    for (int i = 0; i < ncols; i++) {
        if (i == ncols - 1)
            fprintf (out, "%s\n", cells[i]);
        else
            fprintf (out, "%s%*s  ", cells[i], (int)(widths[i] - width (cells[i])), "");
    }
}

void output_table_print (const output_table_t *t, FILE *out)
{
    size_t *widths = xcalloc ((size_t)t->ncols, sizeof *widths);
    for (int i = 0; i < t->ncols; i++) {
        widths[i] = width (t->headers[i]);
        for (size_t r = 0; r < t->nrows; r++)
            if (width (t->rows[r][i]) > widths[i])
                widths[i] = width (t->rows[r][i]);
    }
    print_row (t->headers, widths, t->ncols, out);
    for (size_t r = 0; r < t->nrows; r++)
        print_row (t->rows[r], widths, t->ncols, out);
    free (widths);
}

void output_table_destroy (output_table_t *t)
{
    if (!t)
        return;
    for (size_t r = 0; r < t->nrows; r++) {
        for (int i = 0; i < t->ncols; i++)
            free (t->rows[r][i]);
        free (t->rows[r]);
    }
    for (int i = 0; i < t->ncols; i++)
        free (t->headers[i]);
    free (t->headers);
    free (t->rows);
    free (t);
}

void output_kv (FILE *out, const char *key, const char *value)
{
    char *v = output_clean (value ? value : "-");
    char *k = xasprintf ("%s:", key);
    fprintf (out, "%-16s %s\n", k, v);
    free (k);
    free (v);
}

void output_json (FILE *out, const json_t *v)
{
    json_dumpf (v, out, JSON_INDENT (2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fputc ('\n', out);
}

char *output_size (int64_t bytes, char *buf, size_t n)
{
    static const char units[] = "KMGTP";
    if (bytes < 1000) {
        snprintf (buf, n, "%" PRId64, bytes);
        return buf;
    }
    double v = (double)bytes;
    int u = -1;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf (buf, n, "%.1f%c", v, units[u]);
    return buf;
}

char *output_time (const char *iso, char *buf, size_t n)
{
    if (!iso || !*iso) {
        snprintf (buf, n, "-");
        return buf;
    }
    /* "YYYY-MM-DDTHH:MM:SS" is 19 characters; drop the fraction and the 'T' */
    snprintf (buf, n, "%.19s", iso);
    if (strlen (buf) > 10 && buf[10] == 'T')
        buf[10] = ' ';
    return buf;
}

char *output_scalar (const json_t *v)
{
    if (!v || json_is_null (v))
        return NULL;
    if (json_is_string (v))
        return xstrdup (json_string_value (v));
    if (json_is_integer (v))
        return xasprintf ("%" JSON_INTEGER_FORMAT, json_integer_value (v));
    if (json_is_real (v))
        return xasprintf ("%.1f", json_real_value (v));
    if (json_is_true (v))
        return xstrdup ("true");
    if (json_is_false (v))
        return xstrdup ("false");
    char *s = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *c = xstrdup (s ? s : "?");
    free (s);
    return c;
}

static bool needs_quotes (const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (strchr (" \t\n'\"\\$`*?;&|<>()", *s))
            return true;
    return false;
}

char *output_command_line (const json_t *command, const json_t *arguments)
{
    const char *cmd = json_string_value (command);
    char *line = xstrdup (cmd ? cmd : "");
    size_t i;
    json_t *a;
    json_array_foreach (arguments, i, a)
    {
        const char *s = json_string_value (a);
        if (!s)
            continue;
        char *next = needs_quotes (s) ? xasprintf ("%s '%s'", line, s)
                                      : xasprintf ("%s %s", line, s);
        free (line);
        line = next;
    }
    return line;
}
