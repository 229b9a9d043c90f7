/* toml.h - a small TOML reader for the subset HakuRiver configs use (flat [sections]).
 *
 * Supported: comments, blank lines, `[section]` headers (bare names), `key = value` with
 * bare or quoted keys, basic "strings" (escapes \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX),
 * 'literal strings', integers (sign, `_` separators), floats (incl. inf/nan), booleans and
 * arrays of scalars (may span lines, trailing comma and comments allowed).
 * Not supported (rejected with a clear error): dotted keys and section names, arrays of
 * tables, inline tables, multi-line strings, dates, nested arrays, hex/octal/binary ints.
 * The result is a flat list of entries in file order. Nothing here prints. */
#ifndef HR_COMMON_TOML_H
#define HR_COMMON_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum toml_type {
    TOML_STRING = 1,  /* value.s */
    TOML_INT,         /* value.i */
    TOML_FLOAT,       /* value.f */
    TOML_BOOL,        /* value.b */
    TOML_ARRAY,       /* value.items[0..value.nitems) , each a scalar (never an array) */
};

struct toml_value {
    enum toml_type type;
    char *s;                   /* TOML_STRING: NUL-terminated UTF-8, owned */
    int64_t i;
    double f;
    bool b;
    struct toml_value *items;  /* TOML_ARRAY: owned, NULL when empty */
    size_t nitems;
};

struct toml_entry {
    char *section;             /* "" for keys before the first [section] header */
    char *key;
    int line;                  /* 1-based line of the key */
    struct toml_value value;
};

struct toml_section {
    char *name;
    int line;                  /* line of the [name] header */
};

struct toml_doc {
    struct toml_entry *entries; /* file order */
    size_t count;
    struct toml_section *sections; /* every [section] header, empty ones included */
    size_t nsections;
};

/* Parses LEN bytes of TEXT into DOC (overwritten, not freed first). Returns 0, or -1 with
 * e->text like "line 7: unterminated string" and DOC left empty (nothing to free).
 * On success the caller releases DOC with toml_free(). */
int toml_parse (const char *text, size_t len, struct toml_doc *doc, struct err *e);

/* Reads and parses the file at PATH. Returns 0, or -1 with e->text like
 * "line 3: duplicate key `host_port` in [network]" (syntax) or "open `PATH`: ..." (I/O,
 * e->code = errno). Same ownership as toml_parse(). */
int toml_parse_file (const char *path, struct toml_doc *doc, struct err *e);

/* Releases everything DOC owns and empties it. Safe on an empty or zeroed doc. */
void toml_free (struct toml_doc *doc);

/* Returns "a string", "an integer", "a float", "a boolean" or "an array" for messages. */
const char *toml_type_name (enum toml_type type);

#endif
