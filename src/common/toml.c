/* toml.c - a small TOML reader producing a flat list of {section, key, value, line} */
#include "common/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Config files are a few KiB; 4 MiB bounds memory if someone points us at the wrong file. */
#define TOML_MAX_FILE (4 * 1024 * 1024)
/* Longest token echoed back in an error message. */
#define TOKEN_SHOW 40

struct parser {
    const char *p, *end;
    int line;
    struct err *e;
    struct toml_doc doc;
    size_t cap, seccap;
    const char *section;           /* current section name, owned by doc.sections */
};

static int fail_at (struct parser *ps, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int fail_at (struct parser *ps, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    return err_set (ps->e, EINVAL, "line %d: %s", line, msg);
}

#define fail(ps, ...) fail_at ((ps), (ps)->line, __VA_ARGS__)

/* Describes the character at P for messages: `x`, or a hex code when not printable. */
static const char *show_char (const char *p, const char *end, char *buf, size_t n)
{
    if (p >= end)
        snprintf (buf, n, "end of file");
    else if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
        snprintf (buf, n, "end of line");
    else if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
        snprintf (buf, n, "byte 0x%02x", (unsigned char)*p);
    else
        snprintf (buf, n, "`%c`", *p);
    return buf;
}

static void value_free (struct toml_value *v)
{
    free (v->s);
    for (size_t i = 0; i < v->nitems; i++)
        value_free (&v->items[i]);
    free (v->items);
    memset (v, 0, sizeof *v);
}

void toml_free (struct toml_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->count; i++) {
        free (doc->entries[i].section);
        free (doc->entries[i].key);
        value_free (&doc->entries[i].value);
    }
    free (doc->entries);
    for (size_t i = 0; i < doc->nsections; i++)
        free (doc->sections[i].name);
    free (doc->sections);
    memset (doc, 0, sizeof *doc);
}

const char *toml_type_name (enum toml_type type)
{
    switch (type) {
    case TOML_STRING: return "a string";
    case TOML_INT: return "an integer";
    case TOML_FLOAT: return "a float";
    case TOML_BOOL: return "a boolean";
    case TOML_ARRAY: return "an array";
    }
    return "an unknown value";
}

static int is_bare (char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '_' || c == '-';
}

static int at_eol (const struct parser *ps)
{
    const char *p = ps->p;
    return p >= ps->end || *p == '\n' || *p == '#'
           || (*p == '\r' && p + 1 < ps->end && p[1] == '\n');
}

static void skip_ws (struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

/* Skips a comment (if any) and the line end. The caller checked at_eol(). */
static void skip_eol (struct parser *ps)
{
    if (ps->p < ps->end && *ps->p == '#')
        while (ps->p < ps->end && *ps->p != '\n')
            ps->p++;
    if (ps->p < ps->end && *ps->p == '\r')
        ps->p++;
    if (ps->p < ps->end && *ps->p == '\n') {
        ps->p++;
        ps->line++;
    }
}

/* Skips whitespace, newlines and comments (inside arrays). */
static void skip_ws_nl (struct parser *ps)
{
    for (;;) {
        skip_ws (ps);
        if (ps->p >= ps->end || !at_eol (ps))
            return;
        skip_eol (ps);
    }
}

/* Growable byte buffer for string values. */
struct sbuf {
    char *s;
    size_t len, cap;
};

static void sbuf_add (struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc (b->s, b->cap);
    }
    memcpy (b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static int hexval (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_encode (uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses \uXXXX or \UXXXXXXXX (P after the u/U) into B. */
static int parse_unicode_escape (struct parser *ps, int ndigits, struct sbuf *b)
{
    uint32_t cp = 0;
    for (int i = 0; i < ndigits; i++) {
        int h = ps->p < ps->end ? hexval (*ps->p) : -1;
        if (h < 0)
            return fail (ps, "invalid \\%c escape: expected %d hex digits",
                         ndigits == 4 ? 'u' : 'U', ndigits);
        cp = cp * 16 + (uint32_t)h;
        ps->p++;
    }
    if (cp == 0)
        return fail (ps, "the escape for U+0000 is not allowed in a string");
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return fail (ps, "invalid Unicode code point U+%04X in escape", (unsigned)cp);
    char enc[4];
    sbuf_add (b, enc, utf8_encode (cp, enc));
    return 0;
}

static int check_string_char (struct parser *ps, unsigned char c)
{
    if (c == '\n' || ps->p >= ps->end)
        return fail (ps, "unterminated string");
    if ((c < 0x20 && c != '\t') || c == 0x7f)
        return fail (ps, "control character 0x%02x in string (use an escape)", c);
    return 0;
}

/* Parses a "basic string" (P at the opening quote). *OUT is allocated on success. */
static int parse_basic_string (struct parser *ps, char **out)
{
    struct sbuf b = { 0 };
    sbuf_add (&b, "", 0);
    ps->p++;
    for (;;) {
        if (ps->p >= ps->end) {
            fail (ps, "unterminated string");
            goto error;
        }
        char c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c != '\\') {
            if (check_string_char (ps, (unsigned char)c) < 0)
                goto error;
            sbuf_add (&b, &c, 1);
            ps->p++;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end || *ps->p == '\n') {
            fail (ps, "unterminated string");
            goto error;
        }
        char esc = *ps->p++, r;
        switch (esc) {
        case '"': r = '"'; break;
        case '\\': r = '\\'; break;
        case 'b': r = '\b'; break;
        case 't': r = '\t'; break;
        case 'n': r = '\n'; break;
        case 'f': r = '\f'; break;
        case 'r': r = '\r'; break;
        case 'u':
        case 'U':
            if (parse_unicode_escape (ps, esc == 'u' ? 4 : 8, &b) < 0)
                goto error;
            continue;
        default: {
            char buf[32];
            ps->p--;
            fail (ps, "invalid escape \\%s in string",
                  show_char (ps->p, ps->end, buf, sizeof buf));
            goto error;
        }
        }
        sbuf_add (&b, &r, 1);
    }
    *out = b.s;
    return 0;
error:
    free (b.s);
    return -1;
}

/* Parses a 'literal string' (P at the opening quote): no escapes. */
static int parse_literal_string (struct parser *ps, char **out)
{
    const char *start = ++ps->p;
    while (ps->p < ps->end && *ps->p != '\'') {
        if (check_string_char (ps, (unsigned char)*ps->p) < 0)
            return -1;
        ps->p++;
    }
    if (ps->p >= ps->end)
        return fail (ps, "unterminated string");
    *out = xstrndup (start, (size_t)(ps->p - start));
    ps->p++;
    return 0;
}

/* Validates TOK as a TOML decimal integer or float and converts it. */
static int parse_number (struct parser *ps, const char *tok, size_t len, struct toml_value *v)
{
    char buf[128];
    size_t n = 0, i = 0;
    int is_float = 0;
    if (len >= sizeof buf)
        return fail (ps, "number `%.*s...` is too long", TOKEN_SHOW, tok);
    if (tok[i] == '+' || tok[i] == '-')
        buf[n++] = tok[i++];
    if (i + 1 < len && tok[i] == '0' && (tok[i + 1] == 'x' || tok[i + 1] == 'o' || tok[i + 1] == 'b'))
        return fail (ps, "hexadecimal, octal and binary integers are not supported (`%.*s`)",
                     TOKEN_SHOW, tok);
    size_t int_start = i;
    int part = 0; /* 0 integer part, 1 fraction, 2 exponent */
    for (; i < len; i++) {
        char c = tok[i];
        if (c >= '0' && c <= '9') {
            buf[n++] = c;
        } else if (c == '_') {
            if (i == 0 || !(tok[i - 1] >= '0' && tok[i - 1] <= '9') || i + 1 >= len
                || !(tok[i + 1] >= '0' && tok[i + 1] <= '9'))
                return fail (ps, "invalid number `%.*s`: `_` must be between digits",
                             (int)(len > TOKEN_SHOW ? TOKEN_SHOW : len), tok);
        } else if (c == '.' && part == 0 && i > int_start && i + 1 < len
                   && tok[i + 1] >= '0' && tok[i + 1] <= '9') {
            buf[n++] = c;
            part = 1;
            is_float = 1;
        } else if ((c == 'e' || c == 'E') && part < 2 && i > int_start
                   && tok[i - 1] >= '0' && tok[i - 1] <= '9') {
            buf[n++] = 'e';
            part = 2;
            is_float = 1;
            if (i + 1 < len && (tok[i + 1] == '+' || tok[i + 1] == '-'))
                buf[n++] = tok[++i];
            if (!(i + 1 < len && tok[i + 1] >= '0' && tok[i + 1] <= '9'))
                goto invalid;
        } else {
            goto invalid;
        }
    }
    buf[n] = '\0';
    if (i == int_start || !(tok[int_start] >= '0' && tok[int_start] <= '9'))
        goto invalid;
    if (tok[int_start] == '0' && int_start + 1 < len
        && ((tok[int_start + 1] >= '0' && tok[int_start + 1] <= '9') || tok[int_start + 1] == '_'))
        return fail (ps, "invalid number `%.*s`: leading zeros are not allowed",
                     (int)(len > TOKEN_SHOW ? TOKEN_SHOW : len), tok);
    errno = 0;
    if (is_float) {
        double d = strtod (buf, NULL);
        if (isinf (d))
            return fail (ps, "float `%.*s` is out of range",
                         (int)(len > TOKEN_SHOW ? TOKEN_SHOW : len), tok);
        v->type = TOML_FLOAT;
        v->f = d;
        return 0;
    }
    long long ll = strtoll (buf, NULL, 10);
    if (errno == ERANGE)
        return fail (ps, "integer `%.*s` is out of range (64-bit)",
                     (int)(len > TOKEN_SHOW ? TOKEN_SHOW : len), tok);
    v->type = TOML_INT;
    v->i = ll;
    return 0;
invalid:
    return fail (ps, "invalid value `%.*s`%s", (int)(len > TOKEN_SHOW ? TOKEN_SHOW : len), tok,
                 memchr (tok, ':', len) || (len > 4 && tok[4] == '-')
                     ? " (dates and times are not supported)"
                     : "");
}

static int parse_value (struct parser *ps, struct toml_value *v, int in_array);

/* Parses an array (P at `[`) of scalar values, possibly spanning lines. */
static int parse_array (struct parser *ps, struct toml_value *v)
{
    int open_line = ps->line;
    size_t cap = 0;
    char buf[32];
    v->type = TOML_ARRAY;
    ps->p++;
    for (;;) {
        skip_ws_nl (ps);
        if (ps->p >= ps->end)
            return fail_at (ps, open_line, "unterminated array (missing `]`)");
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        if (v->nitems == cap) {
            cap = cap ? cap * 2 : 4;
            v->items = xreallocarray (v->items, cap, sizeof *v->items);
        }
        memset (&v->items[v->nitems], 0, sizeof *v->items);
        if (parse_value (ps, &v->items[v->nitems], 1) < 0)
            return -1;
        v->nitems++;
        skip_ws_nl (ps);
        if (ps->p >= ps->end)
            return fail_at (ps, open_line, "unterminated array (missing `]`)");
        if (*ps->p == ',')
            ps->p++;
        else if (*ps->p != ']')
            return fail (ps, "expected `,` or `]` in array, got %s",
                         show_char (ps->p, ps->end, buf, sizeof buf));
    }
}

/* Parses one value at P. On failure V may hold partial data: the caller frees it. */
static int parse_value (struct parser *ps, struct toml_value *v, int in_array)
{
    const char *p = ps->p, *end = ps->end;
    char buf[32];
    if (*p == '"' || *p == '\'') {
        if (p + 2 < end && p[1] == *p && p[2] == *p)
            return fail (ps, "multi-line strings are not supported");
        v->type = TOML_STRING;
        return *p == '"' ? parse_basic_string (ps, &v->s) : parse_literal_string (ps, &v->s);
    }
    if (*p == '[') {
        if (in_array)
            return fail (ps, "nested arrays are not supported");
        return parse_array (ps, v);
    }
    if (*p == '{')
        return fail (ps, "inline tables are not supported");
    const char *q = p;
    while (q < end && (is_bare (*q) || *q == '+' || *q == '.' || *q == ':'))
        q++;
    size_t len = (size_t)(q - p);
    if (len == 0)
        return fail (ps, "expected a value, got %s", show_char (p, end, buf, sizeof buf));
    ps->p = q;
#define TOK_IS(s) (len == strlen (s) && memcmp (p, s, len) == 0)
    if (TOK_IS ("true") || TOK_IS ("false")) {
        v->type = TOML_BOOL;
        v->b = *p == 't';
        return 0;
    }
    if (TOK_IS ("inf") || TOK_IS ("+inf") || TOK_IS ("-inf") || TOK_IS ("nan")
        || TOK_IS ("+nan") || TOK_IS ("-nan")) {
        v->type = TOML_FLOAT;
        v->f = p[len - 1] == 'f' ? (*p == '-' ? -INFINITY : INFINITY) : NAN;
        return 0;
    }
#undef TOK_IS
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        return fail (ps, "invalid value `%.*s` (strings must be quoted)",
                     (int)(len > TOKEN_SHOW ? TOKEN_SHOW : len), p);
    return parse_number (ps, p, len, v);
}

/* Parses a bare or quoted key at P into *OUT. */
static int parse_key (struct parser *ps, char **out, const char *what)
{
    char buf[32];
    if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\''))
        return *ps->p == '"' ? parse_basic_string (ps, out) : parse_literal_string (ps, out);
    const char *start = ps->p;
    while (ps->p < ps->end && is_bare (*ps->p))
        ps->p++;
    if (ps->p == start)
        return fail (ps, "expected %s, got %s", what, show_char (ps->p, ps->end, buf, sizeof buf));
    *out = xstrndup (start, (size_t)(ps->p - start));
    return 0;
}

static int parse_header (struct parser *ps)
{
    char buf[32];
    char *name = NULL;
    ps->p++;
    if (ps->p < ps->end && *ps->p == '[')
        return fail (ps, "arrays of tables ([[...]]) are not supported");
    skip_ws (ps);
    if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\''))
        return fail (ps, "quoted section names are not supported");
    if (parse_key (ps, &name, "a section name") < 0)
        return -1;
    skip_ws (ps);
    if (ps->p < ps->end && *ps->p == '.') {
        fail (ps, "dotted section names are not supported ([%s.)", name);
        goto error;
    }
    if (ps->p >= ps->end || *ps->p != ']') {
        fail (ps, "expected `]` to close the section header, got %s",
              show_char (ps->p, ps->end, buf, sizeof buf));
        goto error;
    }
    ps->p++;
    skip_ws (ps);
    if (!at_eol (ps)) {
        fail (ps, "unexpected %s after the section header [%s]",
              show_char (ps->p, ps->end, buf, sizeof buf), name);
        goto error;
    }
    for (size_t i = 0; i < ps->doc.nsections; i++)
        if (strcmp (ps->doc.sections[i].name, name) == 0) {
            fail (ps, "duplicate section [%s] (first defined at line %d)", name,
                  ps->doc.sections[i].line);
            goto error;
        }
    if (ps->doc.nsections == ps->seccap) {
        ps->seccap = ps->seccap ? ps->seccap * 2 : 8;
        ps->doc.sections = xreallocarray (ps->doc.sections, ps->seccap, sizeof *ps->doc.sections);
    }
    ps->doc.sections[ps->doc.nsections].name = name;
    ps->doc.sections[ps->doc.nsections].line = ps->line;
    ps->doc.nsections++;
    ps->section = name;
    skip_eol (ps);
    return 0;
error:
    free (name);
    return -1;
}

static int parse_keyval (struct parser *ps)
{
    char buf[32];
    struct toml_entry ent = { .line = ps->line };
    if (parse_key (ps, &ent.key, "a key or [section]") < 0)
        return -1;
    skip_ws (ps);
    if (ps->p < ps->end && *ps->p == '.') {
        fail (ps, "dotted keys are not supported (`%s.`)", ent.key);
        goto error;
    }
    if (ps->p >= ps->end || *ps->p != '=') {
        fail (ps, "expected `=` after key `%s`, got %s", ent.key,
              show_char (ps->p, ps->end, buf, sizeof buf));
        goto error;
    }
    ps->p++;
    skip_ws (ps);
    for (size_t i = 0; i < ps->doc.count; i++)
        if (strcmp (ps->doc.entries[i].key, ent.key) == 0
            && strcmp (ps->doc.entries[i].section, ps->section) == 0) {
            if (*ps->section)
                fail (ps, "duplicate key `%s` in [%s] (first set at line %d)", ent.key,
                      ps->section, ps->doc.entries[i].line);
            else
                fail (ps, "duplicate key `%s` (first set at line %d)", ent.key,
                      ps->doc.entries[i].line);
            goto error;
        }
    if (at_eol (ps)) {
        fail (ps, "missing value for key `%s`", ent.key);
        goto error;
    }
    if (parse_value (ps, &ent.value, 0) < 0)
        goto error;
    skip_ws (ps);
    if (!at_eol (ps)) {
        fail (ps, "unexpected %s after the value of `%s`",
              show_char (ps->p, ps->end, buf, sizeof buf), ent.key);
        goto error;
    }
    skip_eol (ps);
    ent.section = xstrdup (ps->section);
    if (ps->doc.count == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->doc.entries = xreallocarray (ps->doc.entries, ps->cap, sizeof *ps->doc.entries);
    }
    ps->doc.entries[ps->doc.count++] = ent;
    return 0;
error:
    free (ent.key);
    value_free (&ent.value);
    return -1;
}

int toml_parse (const char *text, size_t len, struct toml_doc *doc, struct err *e)
{
    struct parser ps = { .p = text, .end = text + len, .line = 1, .e = e, .section = "" };
    memset (doc, 0, sizeof *doc);
    const char *nul = memchr (text, '\0', len);
    if (nul) {
        for (const char *q = text; q < nul; q++)
            ps.line += *q == '\n';
        fail (&ps, "NUL byte in file (not a text file?)");
        goto error;
    }
    if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0) /* UTF-8 byte order mark */
        ps.p += 3;
    while (ps.p < ps.end) {
        skip_ws (&ps);
        if (at_eol (&ps)) {
            skip_eol (&ps);
            continue;
        }
        if (*ps.p == '[' ? parse_header (&ps) < 0 : parse_keyval (&ps) < 0)
            goto error;
    }
    *doc = ps.doc;
    return 0;
error:
    toml_free (&ps.doc);
    return -1;
}

int toml_parse_file (const char *path, struct toml_doc *doc, struct err *e)
{
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    memset (doc, 0, sizeof *doc);
    FILE *f = fopen (path, "r");
    if (!f)
        return err_set (e, errno, "open `%s`: %s", path, strerror (errno));
    for (;;) {
        if (len == cap) {
            if (cap >= TOML_MAX_FILE) {
                err_set (e, EFBIG, "`%s` is larger than %d bytes", path, TOML_MAX_FILE);
                goto out;
            }
            cap = cap ? cap * 2 : 8192;
            text = xrealloc (text, cap);
        }
        size_t n = fread (text + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror (f)) {
                err_set (e, errno ? errno : EIO, "read `%s`: %s", path,
                         strerror (errno ? errno : EIO));
                goto out;
            }
            break;
        }
    }
    rc = toml_parse (text ? text : "", len, doc, e);
out:
    free (text);
    fclose (f);
    return rc;
}
