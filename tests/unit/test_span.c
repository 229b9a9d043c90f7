/* test_span.c - the span: argument language: ranges, lists, quoting, errors and positions,
 * product order and limits */
#include "tap.h"

#include <errno.h>
#include <stdint.h>

#include "common/span.h"
#include "common/xalloc.h"

/* Parses ARG and returns its values joined with '|' (a new string), or NULL on error. */
static char *values (const char *arg)
{
    struct span_arg a;
    struct err e = { 0 };
    if (span_arg_parse (arg, &a, NULL, &e) < 0)
        return NULL;
    size_t cap = 16, len = 0;
    char *out = xmalloc (cap);
    out[0] = '\0';
    for (uint64_t k = 0; k < a.count; k++) {
        char buf[SPAN_VALUE_MAX];
        const char *v = span_arg_value (&a, k, buf);
        size_t need = len + strlen (v) + 2;
        if (need > cap) {
            cap = need * 2;
            out = xrealloc (out, cap);
        }
        if (k)
            out[len++] = '|';
        strcpy (out + len, v);
        len += strlen (v);
    }
    span_arg_free (&a);
    return out;
}

static void is_values (const char *arg, const char *want, const char *name)
{
    char *got = values (arg);
    is_str (got, want, "%s: %s", name, arg);
    free (got);
}

/* Checks that ARG fails at position POS with a message containing WHAT. */
static void is_error (const char *arg, size_t pos, const char *what)
{
    struct span_arg a;
    struct err e = { 0 };
    size_t errpos = 0;
    a.kind = SPAN_RANGE;
    a.count = 77;
    int rc = span_arg_parse (arg, &a, &errpos, &e);
    ok (rc < 0 && e.code == EINVAL, "`%s` is refused", arg);
    is_int (errpos, pos, "`%s`: at position %zu", arg, pos);
    char at[64];
    snprintf (at, sizeof at, "at position %zu", pos);
    like (e.text, at, "`%s`: the message gives the position", arg);
    like (e.text, what, "`%s`: %s", arg, e.text);
    ok (a.count == 0 && a.items == NULL && a.plain == NULL, "`%s`: the output is left empty", arg);
}

static void test_plain (void)
{
    is_values ("hello", "hello", "a plain argument is one value");
    is_values ("", "", "an empty argument too");
    is_values ("Span:{1..2}", "Span:{1..2}", "the prefix is case-sensitive");
    is_values (" span:{1..2}", " span:{1..2}", "and must be at the start");
    is_values ("{1..3}", "{1..3}", "braces alone are plain");
    ok (span_is_span ("span:[a]") && !span_is_span ("spa") && !span_is_span (NULL),
        "span_is_span");
}

static void test_ranges (void)
{
    is_values ("span:{1..3}", "1|2|3", "an inclusive range");
    is_values ("span:{3..3}", "3", "a one-value range");
    is_values ("span:{-2..1}", "-2|-1|0|1", "negative start");
    is_values ("span:{-5..-3}", "-5|-4|-3", "both negative");
    is_values ("span:{+1..2}", "1|2", "a plus sign");
    is_values ("span:{007..9}", "7|8|9", "leading zeros are not kept (as 0.3's int())");
    is_values ("span:{ 1 .. 2 }", "1|2", "spaces around the numbers");
    is_values ("span:{5..1}", "", "a reversed range is empty, as in 0.3");
    is_values ("span:{-9223372036854775808..-9223372036854775807}",
               "-9223372036854775808|-9223372036854775807", "the smallest 64-bit integers");
    is_values ("span:{9223372036854775806..9223372036854775807}",
               "9223372036854775806|9223372036854775807", "the largest 64-bit integers");

    struct span_arg a;
    struct err e = { 0 };
    ok (span_arg_parse ("span:{-9223372036854775808..9223372036854775807}", &a, NULL, &e) == 0
            && a.count == UINT64_MAX,
        "the widest range saturates its count instead of wrapping to 0");
    span_arg_free (&a);
    ok (span_arg_parse ("span:{1..1000000000000}", &a, NULL, &e) == 0 && a.count == 1000000000000ULL
            && a.items == NULL,
        "a huge range is not materialised");
    char buf[SPAN_VALUE_MAX];
    is_str (span_arg_value (&a, 999999999999ULL, buf), "1000000000000", "its last value");
    span_arg_free (&a);
    span_arg_free (&a);
    span_arg_free (NULL);
    ok (1, "span_arg_free twice and on NULL is safe");
}

static void test_lists (void)
{
    is_values ("span:[a,b,c]", "a|b|c", "a list");
    is_values ("span:[a, b , c]", "a|b|c", "items are stripped (0.3)");
    is_values ("span:[0.001,0.01,0.1]", "0.001|0.01|0.1", "numbers stay strings");
    is_values ("span:[]", "", "an empty list");
    is_values ("span:[ ]", "", "a blank list is empty too");
    is_values ("span:[one]", "one", "one item");
    is_values ("span:[a b, c  d]", "a b|c  d", "inner spaces are kept");
    is_values ("span:[it's,ok]", "it's|ok", "a quote inside a bare item is literal");
    is_values ("span:[[x,y[0]", "[x|y[0", "an opening bracket inside a bare item is literal");
    is_values ("span:[/x/y\\z]", "/x/y\\z", "a backslash in a bare item is literal");
    is_values ("span:[\"a,b\",'c]d']", "a,b|c]d", "quoted items keep commas and brackets");
    is_values ("span:[\" padded \"]", " padded ", "quoted items keep their spaces");
    is_values ("span:[\"\"]", "", "an empty quoted item");
    is_values ("span:[\"\", x]", "|x", "an empty quoted item and another");
    is_values ("span:['say \"hi\"', \"it's\"]", "say \"hi\"|it's", "the other quote is literal");
    is_values ("span:[\"a\\\"b\", 'c\\'d', \"e\\\\f\"]", "a\"b|c'd|e\\f", "backslash escapes");
    is_values ("span:[\"span:x\"]", "span:x", "a value that starts with span:");
    is_values ("span:[ \"a\" , 'b' ]", "a|b", "spaces around quoted items");
    is_values ("span:[x,\"y\"]", "x|y", "bare and quoted mixed");
}

static void test_errors (void)
{
    /* 123456789 123456789 */
    is_error ("span:", 6, "expected `{START..END}` or `[ITEM,...]`");
    is_error ("span:foo", 6, "span:[\"span:...\"]");
    is_error ("span:(1..2)", 6, "after `span:`");
    is_error ("span:{", 7, "unterminated range");
    is_error ("span:{}", 7, "missing range start");
    is_error ("span:{..3}", 7, "missing range start");
    is_error ("span:{x..3}", 7, "range start `x` is not a 64-bit integer");
    is_error ("span:{1.5..3}", 7, "range start `1.5`");
    is_error ("span:{1}", 8, "expected `..`");
    is_error ("span:{1", 8, "expected `..`");
    is_error ("span:{1 2..3}", 9, "expected `..`");
    is_error ("span:{1..}", 10, "missing range end");
    is_error ("span:{1..", 10, "missing range end");
    is_error ("span:{1..y}", 10, "range end `y` is not a 64-bit integer");
    is_error ("span:{1..3..2}", 10, "a step is not supported");
    is_error ("span:{1..3", 11, "unterminated range: missing `}`");
    is_error ("span:{1..3 x}", 12, "expected `}`");
    is_error ("span:{1..3}x", 12, "unexpected text `x` after `}`");
    is_error ("span:{1..9223372036854775808}", 10, "not a 64-bit integer");
    is_error ("span:{-9223372036854775809..0}", 7, "not a 64-bit integer");
    is_error ("span:{-..1}", 7, "range start `-`");
    is_error ("span:[", 7, "unterminated list");
    is_error ("span:[a", 8, "unterminated list: missing `]`");
    is_error ("span:[a,b", 10, "unterminated list");
    is_error ("span:[a,]", 9, "empty item");
    is_error ("span:[,a]", 7, "empty item");
    is_error ("span:[a,,b]", 9, "write \"\" for an empty string");
    is_error ("span:[a, ]", 10, "empty item");
    is_error ("span:[a]b]", 9, "unexpected text `b]` after `]`");
    is_error ("span:[a] ", 9, "after `]`");
    is_error ("span:[\"abc]", 7, "unterminated double-quoted item");
    is_error ("span:[x, 'abc]", 10, "unterminated single-quoted item");
    is_error ("span:[\"a\\\"]", 7, "unterminated");
    is_error ("span:['a'b]", 10, "unexpected `b` after a quoted item");
    is_error ("span:['a' 'b']", 11, "after a quoted item");
}

/* Joins a combination with spaces. */
static char *join (char **v)
{
    size_t len = 1;
    for (char **p = v; *p; p++)
        len += strlen (*p) + 1;
    char *out = xcalloc (1, len);
    for (char **p = v; *p; p++) {
        if (p != v)
            strcat (out, " ");
        strcat (out, *p);
    }
    return out;
}

static void test_product (void)
{
    struct span_set s;
    struct err e = { 0 };
    size_t errarg = 99;
    const char *args[] = { "span:{1..2}", "fixed", "span:[a, b]" };
    ok (span_set_parse (&s, 3, args, 100, &errarg, &e) == 0, "parse three arguments");
    is_int (s.count, 4, "2 x 1 x 2 combinations");
    is_int (s.nspans, 2, "two of them spans");
    const char *want[] = { "1 fixed a", "1 fixed b", "2 fixed a", "2 fixed b" };
    for (uint64_t i = 0; i < s.count && i < 4; i++) {
        char **v = span_set_argv (&s, i);
        char *j = join (v);
        is_str (j, want[i], "combination %d: the last argument varies fastest", (int)i);
        free (j);
        span_argv_free (v);
    }
    span_set_free (&s);
    span_set_free (&s);
    span_set_free (NULL);
    span_argv_free (NULL);

    const char *three[] = { "span:[x,y,z]", "span:{0..1}", "span:{5..7}" };
    ok (span_set_parse (&s, 3, three, 100, NULL, &e) == 0 && s.count == 18, "3 x 2 x 3");
    char **v = span_set_argv (&s, 17);
    char *j = join (v);
    is_str (j, "z 1 7", "the last combination");
    free (j);
    span_argv_free (v);
    v = span_set_argv (&s, 7);
    j = join (v);
    is_str (j, "y 0 6", "combination 7 = (1, 0, 1) in mixed radix");
    free (j);
    span_argv_free (v);
    span_set_free (&s);

    const char *plain[] = { "a", "b" };
    ok (span_set_parse (&s, 2, plain, 1, NULL, &e) == 0 && s.count == 1 && s.nspans == 0,
        "plain arguments give one combination");
    span_set_free (&s);
    ok (span_set_parse (&s, 0, NULL, 1, NULL, &e) == 0 && s.count == 1 && s.nargs == 0,
        "no arguments give one (empty) combination");
    v = span_set_argv (&s, 0);
    ok (v && v[0] == NULL, "which is an empty vector");
    span_argv_free (v);
    span_set_free (&s);

    const char *empty[] = { "span:{1..1000000}", "span:[]", "span:{1..1000000}" };
    ok (span_set_parse (&s, 3, empty, 10, NULL, &e) == 0 && s.count == 0,
        "an empty span anywhere gives 0 combinations, even beside huge ones");
    span_set_free (&s);
    const char *rev[] = { "span:{3..1}" };
    ok (span_set_parse (&s, 1, rev, 10, NULL, &e) == 0 && s.count == 0,
        "so does a reversed range");
    span_set_free (&s);
}

static void test_set_errors (void)
{
    struct span_set s;
    struct err e = { 0 };
    size_t errarg = 99;
    const char *bad[] = { "ok", "span:[a]", "span:{1..x}", "span:[" };
    ok (span_set_parse (&s, 4, bad, 100, &errarg, &e) < 0, "a bad argument fails the set");
    is_int (errarg, 3, "the first bad argument is reported");
    is_str (e.text, "argument 3 `span:{1..x}`: range end `x` is not a 64-bit integer at position 10",
            "the message names the argument, its text and the position");
    span_set_free (&s);

    const char *big[] = { "span:{1..1000}", "span:{1..101}" };
    errarg = 99;
    ok (span_set_parse (&s, 2, big, 100000, &errarg, &e) < 0 && e.code == E2BIG,
        "101000 combinations over a limit of 100000 are refused");
    is_int (errarg, 0, "no single argument is blamed");
    like (e.text, "101000 combinations, more than the limit of 100000", "%s", e.text);
    span_set_free (&s);
    ok (span_set_parse (&s, 2, big, 101000, NULL, &e) == 0 && s.count == 101000,
        "exactly at the limit is accepted");
    span_set_free (&s);

    const char *huge[] = { "span:{1..4294967296}", "span:{1..4294967296}", "span:{1..2}" };
    ok (span_set_parse (&s, 3, huge, 100000, NULL, &e) < 0 && e.code == E2BIG,
        "a product over 2^64 is refused, not wrapped");
    like (e.text, "over 2^64", "%s", e.text);
    span_set_free (&s);

    char longarg[400];
    memset (longarg, 'x', sizeof longarg);
    memcpy (longarg, "span:{", 6);
    longarg[sizeof longarg - 1] = '\0';
    const char *lng[] = { longarg };
    ok (span_set_parse (&s, 1, lng, 10, NULL, &e) < 0, "a long bad argument");
    like (e.text, "...`", "is quoted shortened: %s", e.text);
    ok (strlen (e.text) < sizeof e.text - 1, "and the message fits");
    span_set_free (&s);

    const char *ctl[] = { "span:{\x1b[31m..2}" };
    ok (span_set_parse (&s, 1, ctl, 10, NULL, &e) < 0 && !strchr (e.text, '\x1b'),
        "control characters are escaped in the message: %s", e.text);
    span_set_free (&s);
}

static void test_literal (void)
{
    const char *cases[] = { "plain", "", "span:x", "span:{1..2}", "span:[\"q\\\"]", "span:" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *lit = span_literal (cases[i]);
        struct span_arg a;
        struct err e = { 0 };
        char buf[SPAN_VALUE_MAX];
        ok (span_arg_parse (lit, &a, NULL, &e) == 0 && a.count == 1
                && strcmp (span_arg_value (&a, 0, buf), cases[i]) == 0,
            "span_literal (`%s`) = `%s` parses back to one value, itself", cases[i], lit);
        span_arg_free (&a);
        free (lit);
    }
}

int main (void)
{
    test_plain ();
    test_ranges ();
    test_lists ();
    test_errors ();
    test_product ();
    test_set_errors ();
    test_literal ();
    return done_testing ();
}
