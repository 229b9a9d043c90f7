/* test_toml.c - the TOML subset reader: every value type, arrays, and every error with its line */
#include "tap.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "common/toml.h"

static struct err e;

static int parse (const char *text, struct toml_doc *doc)
{
    err_clear (&e);
    return toml_parse (text, strlen (text), doc, &e);
}

/* Parses TEXT expecting failure; returns the error text. */
static const char *parse_err (const char *text)
{
    struct toml_doc doc;
    if (parse (text, &doc) == 0) {
        toml_free (&doc);
        return "(parsed without error)";
    }
    if (doc.count != 0 || doc.entries != NULL || doc.sections != NULL)
        return "(doc not left empty on failure)";
    return e.text;
}

static const struct toml_value *get (const struct toml_doc *doc, const char *section,
                                     const char *key)
{
    for (size_t i = 0; i < doc->count; i++)
        if (strcmp (doc->entries[i].section, section) == 0 && strcmp (doc->entries[i].key, key) == 0)
            return &doc->entries[i].value;
    return NULL;
}

static void test_values (void)
{
    struct toml_doc doc;
    const char *text =
        "# leading comment\n"
        "\n"
        "top = 1\n"
        "[network]   # trailing comment\n"
        "host = \"a \\\"b\\\" \\\\ \\n\\t\\u00e9\\U0001F600\"  # comment\n"
        "lit = 'C:\\path\\no \"escapes\"'\n"
        "empty = \"\"\n"
        "port = 8_000\n"
        "neg = -42\n"
        "pos = +7\n"
        "zero = 0\n"
        "big = 9223372036854775807\n"
        "small = -9223372036854775808\n"
        "f1 = 1.5\n"
        "f2 = -2e3\n"
        "f3 = 6.25E-1\n"
        "f4 = 1_0.0_1\n"
        "fi = -inf\n"
        "fn = nan\n"
        "yes = true\n"
        "no = false\n"
        "\"quoted key\" = 1\n"
        "'lit key' = 2\n"
        "dash-key_1 = 3\n"
        "tabs\t=\t\"t\"\r\n"
        "[empty_section]\n"
        "[paths]\n"
        "x = 1";
    ok (parse (text, &doc) == 0, "document with every scalar type parses: %s", e.text);
    const struct toml_value *v;
    v = get (&doc, "", "top");
    ok (v && v->type == TOML_INT && v->i == 1, "key before any section has section \"\"");
    v = get (&doc, "network", "host");
    ok (v && v->type == TOML_STRING, "basic string");
    is_str (v ? v->s : NULL, "a \"b\" \\ \n\t\xc3\xa9\xf0\x9f\x98\x80", "escapes incl. \\u and \\U decoded to UTF-8");
    v = get (&doc, "network", "lit");
    is_str (v ? v->s : NULL, "C:\\path\\no \"escapes\"", "literal string keeps backslashes");
    v = get (&doc, "network", "empty");
    is_str (v ? v->s : NULL, "", "empty string");
    v = get (&doc, "network", "port");
    ok (v && v->type == TOML_INT && v->i == 8000, "integer with _ separator");
    v = get (&doc, "network", "neg");
    is_int (v ? v->i : 0, -42, "negative integer");
    v = get (&doc, "network", "pos");
    is_int (v ? v->i : 0, 7, "explicit + sign");
    v = get (&doc, "network", "zero");
    ok (v && v->type == TOML_INT && v->i == 0, "zero");
    v = get (&doc, "network", "big");
    ok (v && v->i == INT64_MAX, "INT64_MAX");
    v = get (&doc, "network", "small");
    ok (v && v->i == INT64_MIN, "INT64_MIN");
    v = get (&doc, "network", "f1");
    ok (v && v->type == TOML_FLOAT && v->f == 1.5, "float");
    v = get (&doc, "network", "f2");
    ok (v && v->type == TOML_FLOAT && v->f == -2000.0, "float with exponent");
    v = get (&doc, "network", "f3");
    ok (v && v->type == TOML_FLOAT && v->f == 0.625, "float with fraction and E-");
    v = get (&doc, "network", "f4");
    ok (v && v->type == TOML_FLOAT && v->f == 10.01, "float with separators");
    v = get (&doc, "network", "fi");
    ok (v && v->type == TOML_FLOAT && isinf (v->f) && v->f < 0, "-inf");
    v = get (&doc, "network", "fn");
    ok (v && v->type == TOML_FLOAT && isnan (v->f), "nan");
    v = get (&doc, "network", "yes");
    ok (v && v->type == TOML_BOOL && v->b, "true");
    v = get (&doc, "network", "no");
    ok (v && v->type == TOML_BOOL && !v->b, "false");
    ok (get (&doc, "network", "quoted key") && get (&doc, "network", "lit key"), "quoted keys");
    ok (get (&doc, "network", "dash-key_1") != NULL, "bare key with - and _");
    v = get (&doc, "network", "tabs");
    is_str (v ? v->s : NULL, "t", "tabs around = and CRLF line end");
    v = get (&doc, "paths", "x");
    ok (v && v->i == 1, "last line without newline");
    is_int (doc.nsections, 3, "three section headers recorded");
    ok (doc.nsections == 3 && strcmp (doc.sections[1].name, "empty_section") == 0
            && doc.sections[1].line == 26,
        "empty section recorded with its line");
    int lines_ok = 0;
    for (size_t i = 0; i < doc.count; i++)
        if (strcmp (doc.entries[i].key, "port") == 0 && doc.entries[i].line == 8)
            lines_ok = 1;
    ok (lines_ok, "entry line numbers are 1-based file lines");
    is_str (doc.entries[0].key, "top", "entries in file order");
    toml_free (&doc);
    ok (doc.count == 0 && doc.entries == NULL, "toml_free empties the doc");
    toml_free (&doc);
    toml_free (NULL);
    ok (1, "toml_free twice and on NULL is safe");
}

static void test_arrays (void)
{
    struct toml_doc doc;
    const char *text = "[docker]\n"
                       "empty = []\n"
                       "one = [ \"a\" ]\n"
                       "ints = [1, -2, 3_0]\n"
                       "multi = [\n"
                       "  \"x:/y\",   # first\n"
                       "  # a whole comment line\n"
                       "\n"
                       "  'z:/w:ro', # trailing comma next\n"
                       "]\n"
                       "after = 5\n";
    ok (parse (text, &doc) == 0, "arrays parse: %s", e.text);
    const struct toml_value *v = get (&doc, "docker", "empty");
    ok (v && v->type == TOML_ARRAY && v->nitems == 0, "empty array");
    v = get (&doc, "docker", "one");
    ok (v && v->nitems == 1 && v->items[0].type == TOML_STRING && strcmp (v->items[0].s, "a") == 0,
        "one-element array");
    v = get (&doc, "docker", "ints");
    ok (v && v->nitems == 3 && v->items[1].i == -2 && v->items[2].i == 30, "integer array");
    v = get (&doc, "docker", "multi");
    ok (v && v->nitems == 2 && strcmp (v->items[0].s, "x:/y") == 0
            && strcmp (v->items[1].s, "z:/w:ro") == 0,
        "multi-line array with comments, blank line and trailing comma");
    int line = 0;
    for (size_t i = 0; i < doc.count; i++)
        if (strcmp (doc.entries[i].key, "after") == 0)
            line = doc.entries[i].line;
    is_int (line, 11, "line counting continues after a multi-line array");
    toml_free (&doc);
}

static void test_errors (void)
{
    is_str (parse_err ("a = 1\nb = \"abc\n"), "line 2: unterminated string", "unterminated string");
    is_str (parse_err ("a = 'abc"), "line 1: unterminated string", "unterminated literal at EOF");
    is_str (parse_err ("a = \"abc"), "line 1: unterminated string", "unterminated basic at EOF");
    is_str (parse_err ("[network]\nhost_port = 1\n\nhost_port = 2\n"),
            "line 4: duplicate key `host_port` in [network] (first set at line 2)", "duplicate key");
    is_str (parse_err ("x = 1\nx = 2\n"), "line 2: duplicate key `x` (first set at line 1)",
            "duplicate top-level key");
    is_str (parse_err ("[a]\nk = 1\n[b]\nk = 1\n[a]\n"),
            "line 5: duplicate section [a] (first defined at line 1)", "duplicate section");
    struct toml_doc doc;
    ok (parse ("[a]\nk = 1\n[b]\nk = 2\n", &doc) == 0, "same key in different sections is fine");
    toml_free (&doc);
    like (parse_err ("\n\nk = \"a\\qb\"\n"), "line 3: invalid escape \\`q`", "invalid escape");
    like (parse_err ("k = \"\\u12\"\n"), "line 1: invalid \\u escape", "short \\u escape");
    like (parse_err ("k = \"\\uD800\"\n"), "line 1: invalid Unicode code point", "surrogate");
    like (parse_err ("k = \"\\U00110000\"\n"), "line 1: invalid Unicode code point", "beyond U+10FFFF");
    like (parse_err ("k = \"\\u0000\"\n"), "line 1: the escape for U+0000", "NUL escape");
    like (parse_err ("k = \"a\x01\"\n"), "line 1: control character 0x01", "raw control character");
    like (parse_err ("k = 1 2\n"), "line 1: unexpected `2` after the value of `k`", "junk after value");
    like (parse_err ("k =\n"), "line 1: missing value for key `k`", "missing value");
    like (parse_err ("k = # c\n"), "line 1: missing value for key `k`", "missing value before comment");
    like (parse_err ("k 1\n"), "line 1: expected `=` after key `k`", "missing =");
    like (parse_err ("= 1\n"), "line 1: expected a key or [section], got `=`", "missing key");
    like (parse_err ("a.b = 1\n"), "line 1: dotted keys are not supported", "dotted key");
    like (parse_err ("[a.b]\n"), "line 1: dotted section names are not supported", "dotted section");
    like (parse_err ("[[a]]\n"), "line 1: arrays of tables", "array of tables");
    like (parse_err ("[a\n"), "line 1: expected `]` to close the section header", "unclosed header");
    like (parse_err ("[]\n"), "line 1: expected a section name", "empty header");
    like (parse_err ("[a] x\n"), "line 1: unexpected `x` after the section header [a]", "junk after header");
    like (parse_err ("[\"a\"]\n"), "line 1: quoted section names are not supported", "quoted section");
    like (parse_err ("k = {a = 1}\n"), "line 1: inline tables are not supported", "inline table");
    like (parse_err ("k = \"\"\"x\"\"\"\n"), "line 1: multi-line strings are not supported", "multi-line string");
    like (parse_err ("k = [[1]]\n"), "line 1: nested arrays are not supported", "nested array");
    like (parse_err ("\nk = [1,\n2\n"), "line 2: unterminated array", "unterminated array names its first line");
    like (parse_err ("k = [1 2]\n"), "line 1: expected `,` or `]` in array, got `2`", "missing comma");
    like (parse_err ("k = [1,,2]\n"), "line 1: expected a value, got `,`", "double comma");
    like (parse_err ("k = [\n1,\n\"x\nx\"]\n"), "line 3: unterminated string", "string in array spans lines");
    like (parse_err ("k = yes\n"), "line 1: invalid value `yes` (strings must be quoted)", "bare word");
    like (parse_err ("k = 1979-05-27\n"), "(dates and times are not supported)", "date");
    like (parse_err ("k = 07:32:00\n"), "(dates and times are not supported)", "time");
    like (parse_err ("k = 0x1F\n"), "line 1: hexadecimal, octal and binary", "hex");
    like (parse_err ("k = 012\n"), "line 1: invalid number `012`: leading zeros", "leading zero");
    like (parse_err ("k = 1__0\n"), "`_` must be between digits", "double underscore");
    like (parse_err ("k = _1\n"), "line 1:", "leading underscore");
    like (parse_err ("k = 1_\n"), "`_` must be between digits", "trailing underscore");
    like (parse_err ("k = 1.\n"), "line 1: invalid value `1.`", "float without fraction digits");
    like (parse_err ("k = .5\n"), "line 1: invalid value `.5`", "float without integer digits");
    like (parse_err ("k = 1e\n"), "line 1: invalid value `1e`", "exponent without digits");
    like (parse_err ("k = 1.2.3\n"), "line 1: invalid value `1.2.3`", "two dots");
    like (parse_err ("k = +\n"), "line 1: invalid value `+`", "lone sign");
    like (parse_err ("k = 9223372036854775808\n"), "line 1: integer `9223372036854775808` is out of range",
          "integer overflow");
    like (parse_err ("k = 1e999\n"), "line 1: float `1e999` is out of range", "float overflow");
    like (parse_err ("k = @\n"), "line 1: expected a value, got `@`", "garbage value");
    is_str (parse_err ("a = 1\n\n\n\n\n\nb = \"x\n"), "line 7: unterminated string",
            "line number counted over blank lines");
    is_int (e.code, EINVAL, "syntax errors have code EINVAL");
}

static void test_nul_len (void)
{
    /* the length argument, not strlen, bounds the text */
    struct toml_doc doc;
    const char text[] = "a = 1\0b = 2";
    err_clear (&e);
    ok (toml_parse (text, sizeof text - 1, &doc, &e) < 0, "embedded NUL within LEN is an error");
    is_str (e.text, "line 1: NUL byte in file (not a text file?)", "NUL byte error names its line");
    const char text2[] = "a = 1\n\nk = \"x\0\"\n";
    ok (toml_parse (text2, sizeof text2 - 1, &doc, &e) < 0, "NUL inside a string is an error");
    like (e.text, "line 3: NUL byte", "NUL byte on line 3");
    ok (toml_parse (text, 5, &doc, &e) == 0 && doc.count == 1, "LEN stops before the NUL");
    toml_free (&doc);
    ok (toml_parse ("", 0, &doc, &e) == 0 && doc.count == 0, "empty text is an empty document");
    toml_free (&doc);
    ok (toml_parse ("\xef\xbb\xbfk = 1\n", 9, &doc, &e) == 0 && doc.count == 1, "UTF-8 BOM skipped");
    toml_free (&doc);
}

static void test_file (void)
{
    char path[] = "/tmp/test_toml.XXXXXX";
    int fd = mkstemp (path);
    ok (fd >= 0, "mkstemp");
    const char *text = "[s]\nk = [\"a\",\n\"b\"]\n";
    ok (write (fd, text, strlen (text)) == (ssize_t)strlen (text), "write temp file");
    close (fd);
    struct toml_doc doc;
    ok (toml_parse_file (path, &doc, &e) == 0 && doc.count == 1
            && doc.entries[0].value.nitems == 2,
        "toml_parse_file reads a file");
    toml_free (&doc);
    unlink (path);
    ok (toml_parse_file (path, &doc, &e) < 0 && e.code == ENOENT, "missing file gives ENOENT");
    like (e.text, "open `/tmp/test_toml.", "missing file error names the path");
    ok (toml_parse_file ("/tmp", &doc, &e) < 0, "a directory is an error");
    is_str (toml_type_name (TOML_ARRAY), "an array", "type names for messages");
}

int main (void)
{
    test_values ();
    test_arrays ();
    test_errors ();
    test_nul_len ();
    test_file ();
    return done_testing ();
}
