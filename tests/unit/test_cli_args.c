/* test_cli_args.c - user CLI parsing: targets, env, numbers, ids, submit body (sweeps too),
 * kill, hakurun options, list paths */
#include <errno.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "tap.h"

#define ARGC(a) ((int)(sizeof (a) / sizeof (a)[0]) - 1)

static char *dump (const json_t *j)
{
    return json_dumps (j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* Parses ARGV (NULL-terminated, argv[0] = "submit") and returns the body as sorted JSON
 * text, or NULL with E filled on a usage error. */
static char *submit_json (char **argv, struct err *e)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    struct args_submit o;
    char *s = NULL;
    if (args_parse_submit (argc, argv, &o, e) == 0) {
        json_t *b = args_submit_body (&o);
        s = dump (b);
        json_decref (b);
    }
    args_submit_free (&o);
    return s;
}

static void test_targets (void)
{
    struct args_target t;
    struct err e = { 0 };

    ok (args_parse_target ("node1", &t, &e) == 0, "plain host parses");
    is_str (t.name, "node1", "plain host name");
    is_int (t.ngpus, 0, "plain host has no GPUs");
    ok (t.gpus == NULL, "plain host GPU list is NULL");
    args_target_free (&t);

    ok (args_parse_target ("node-2.lan:1", &t, &e) == 0, "host:numa parses");
    is_str (t.name, "node-2.lan:1", "host:numa kept for the host");
    is_int (t.ngpus, 0, "host:numa has no GPUs");
    args_target_free (&t);

    ok (args_parse_target ("gpu_box::0,3", &t, &e) == 0, "host::gpus parses");
    is_str (t.name, "gpu_box", "host::gpus name drops the GPU part");
    is_int (t.ngpus, 2, "two GPUs");
    ok (t.ngpus == 2 && t.gpus[0] == 0 && t.gpus[1] == 3, "GPU ids 0 and 3");
    args_target_free (&t);

    ok (args_parse_target ("h:0::7", &t, &e) == 0, "host:numa::gpu parses");
    is_str (t.name, "h:0", "host:numa::gpu name");
    ok (t.ngpus == 1 && t.gpus[0] == 7, "GPU id 7");
    args_target_free (&t);

    t.name = (char *)"untouched";
    ok (args_parse_target ("host:abc", &t, &e) < 0, "host:abc is rejected");
    is_str (e.text, "invalid target `host:abc`: NUMA id must be a non-negative integer",
            "host:abc message");
    is_int (e.code, EINVAL, "usage errors carry EINVAL");
    is_str (t.name, "untouched", "output untouched on failure");

    static const struct {
        const char *value, *why;
    } bad[] = {
        { "host:-1", "NUMA id must be a non-negative integer" },
        { "host:", "NUMA id must be a non-negative integer" },
        { "host:1:2", "NUMA id must be a non-negative integer" },
        { "host:99999999999999999999", "NUMA id must be a non-negative integer" },
        { "host::", "empty GPU list" },
        { "host::a", "GPU id `a` must be a non-negative integer" },
        { "host::-1", "GPU id `-1` must be a non-negative integer" },
        { "host::0,,1", "empty GPU id" },
        { "host::0,", "empty GPU id" },
        { "host::1.5", "GPU id `1.5`" },
        { "", "hostname is empty" },
        { "::0", "hostname is empty" },
        { ":1", "hostname is empty" },
        { "bad host", "hostname may only contain" },
        { "h/x", "hostname may only contain" },
        { "h$x:1", "hostname may only contain" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear (&e);
        ok (args_parse_target (bad[i].value, &t, &e) < 0, "target `%s` is rejected", bad[i].value);
        like (e.text, bad[i].why, "target `%s` message", bad[i].value);
    }
}

static void test_env (void)
{
    struct err e = { 0 };
    char *k = NULL, *v = NULL;
    ok (args_parse_env ("A=b=c", &k, &v, &e) == 0, "env splits on the first '='");
    is_str (k, "A", "env key");
    is_str (v, "b=c", "env value keeps later '='");
    free (k);
    free (v);
    ok (args_parse_env ("_X1=", &k, &v, &e) == 0, "empty value allowed");
    is_str (k, "_X1", "underscore key");
    is_str (v, "", "empty value");
    free (k);
    free (v);
    k = v = NULL;
    const char *bad[] = { "NOEQUALS", "=v", "1A=v", "A-B=v", "A B=v", " A=v" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear (&e);
        ok (args_parse_env (bad[i], &k, &v, &e) < 0, "env `%s` rejected", bad[i]);
        like (e.text, "--env", "env `%s` message names the flag", bad[i]);
    }
    ok (k == NULL && v == NULL, "env outputs untouched on failure");
}

static void test_numbers (void)
{
    struct err e = { 0 };
    int64_t n = 42;
    ok (args_parse_uint ("--cores", "0", 100, &n, &e) == 0 && n == 0, "--cores 0");
    ok (args_parse_uint ("--cores", "16", 100, &n, &e) == 0 && n == 16, "--cores 16");
    n = 42;
    ok (args_parse_uint ("--cores", "-1", 100, &n, &e) < 0, "--cores -1 rejected");
    like (e.text, "--cores `-1`", "message names flag and value");
    const char *bad[] = { "", "abc", "1.5", "+3", " 3", "3 ", "101", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok (args_parse_uint ("--cores", bad[i], 100, &n, &e) < 0, "--cores `%s` rejected", bad[i]);
    is_int (n, 42, "output untouched on failure");

    uint64_t id = 0;
    ok (args_parse_task_id ("7530375621982027776", &id, &e) == 0, "snowflake id parses");
    ok (id == 7530375621982027776ULL, "snowflake id value");
    ok (args_parse_task_id ("9223372036854775807", &id, &e) == 0, "2^63-1 accepted");
    const char *badid[] = { "abc", "", "-5", "12a", "0x10", "9223372036854775808", "1 " };
    for (size_t i = 0; i < sizeof badid / sizeof badid[0]; i++) {
        err_clear (&e);
        ok (args_parse_task_id (badid[i], &id, &e) < 0, "task id `%s` rejected", badid[i]);
    }
    args_parse_task_id ("abc", &id, &e);
    is_str (e.text, "invalid task ID `abc`: expected a decimal number", "task id message");

    double s = 0;
    ok (args_parse_seconds ("--poll-interval", "0.2", &s, &e) == 0 && s > 0.19 && s < 0.21,
        "fractional poll interval");
    ok (args_parse_seconds ("--poll-interval", "3", &s, &e) == 0 && s == 3, "integer interval");
    const char *bads[] = { "0", "-1", "abc", "inf", "nan", "1e3", "0x1", "", "5000", "1.2.3" };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++)
        ok (args_parse_seconds ("--poll-interval", bads[i], &s, &e) < 0,
            "poll interval `%s` rejected", bads[i]);
}

static void test_global (void)
{
    struct args_global g;
    struct err e = { 0 };
    char *a1[] = { "hakuriver.task", "--config", "/x.toml", "--json", "submit", "--help", NULL };
    ok (args_parse_global (ARGC (a1), a1, &g, &e) == 0, "global options parse");
    is_str (g.config, "/x.toml", "--config PATH");
    ok (g.json && !g.help, "--json before the subcommand");
    is_int (g.sub, 4, "subcommand index");
    char *a2[] = { "task", "-c", "/y.toml", NULL };
    ok (args_parse_global (ARGC (a2), a2, &g, &e) == 0, "-c PATH parses");
    is_str (g.config, "/y.toml", "-c PATH value");
    is_int (g.sub, 3, "no subcommand: sub == argc");
}

static void test_simple (void)
{
    struct err e = { 0 };
    const char *pos[2] = { NULL, NULL };
    bool help = false, json = false;
    int npos = 0;
    char *a1[] = { "command", "123", "--json", "pause", NULL };
    ok (args_parse_simple (ARGC (a1), a1, 2, 2, pos, &npos, &json, &help, &e) == 0 && npos == 2,
        "two positionals");
    ok (json, "--json after the subcommand");
    is_str (pos[0], "123", "first positional");
    is_str (pos[1], "pause", "second positional");
    char *a2[] = { "status", NULL };
    ok (args_parse_simple (ARGC (a2), a2, 1, 1, pos, &npos, &json, &help, &e) < 0, "missing positional");
    char *a3[] = { "status", "1", "2", NULL };
    ok (args_parse_simple (ARGC (a3), a3, 1, 1, pos, &npos, &json, &help, &e) < 0, "extra positional");
    uint64_t id = 0;
    ok (args_parse_task_id ("7291823712", &id, &e) == 0 && id == 7291823712ULL, "task id");
    ok (args_parse_task_id ("12a", &id, &e) < 0, "non-numeric id rejected");
    like (e.text, "12a", "bad id named");
    ok (args_parse_task_id ("-1", &id, &e) < 0, "negative id rejected");
    ok (args_parse_task_id ("", &id, &e) < 0, "empty id rejected");
}

static void test_submit (void)
{
    struct err e = { 0 };
    char *s;
    char *a3[] = { "submit",    "--target",  "a:0::1,2",   "--target=b",   "--cores",
                   "0",         "--memory",  "512M",       "--env",        "A=1",
                   "--env",     "B=x=y",     "--env",      "A=2",          "--container",
                   "NULL",      "--privileged", "--mount", "/d:/d:ro",    "--retries",
                   "2",         "--json",    "--",         "python",       "-c",
                   "print(1)",  "--cores",   NULL };
    s = submit_json (a3, &e);
    is_str (s,
            "{\"additional_mounts\":[\"/d:/d:ro\"],\"arguments\":[\"-c\",\"print(1)\","
            "\"--cores\"],\"command\":\"python\",\"container_name\":\"NULL\",\"env_vars\":{\"A\":"
            "\"2\",\"B\":\"x=y\"},\"privileged\":true,\"required_cores\":0,\"required_gpus\":[[1,"
            "2],[]],\"required_memory_bytes\":512000000,\"retries\":2,\"targets\":[\"a:0\",\"b\"],"
            "\"task_type\":\"command\"}",
            "full body: gpus parallel to targets, env last wins, args after -- kept");
    free (s);

    /* the first non-option word starts the command; later dashes belong to it */
    char *a4[] = { "submit", "--cores", "2", "ls", "-la", "--", "--target", "x", NULL };
    s = submit_json (a4, &e);
    like (s, "\"arguments\":[\"-la\",\"--\",\"--target\",\"x\"]",
          "words after the command are its arguments");
    like (s, "\"command\":\"ls\"", "command is the first non-option word");
    like (s, "\"targets\":null", "a --target after the command is not an option");
    free (s);

    /* 0.3's nargs="+": several values after one --target when a -- follows */
    char *a8[] = { "submit", "--target", "a", "b:1", "--cores", "1", "--target", "c", "--",
                   "hostname", NULL };
    s = submit_json (a8, &e);
    like (s, "\"targets\":[\"a\",\"b:1\",\"c\"]", "--target a b:1 ... -- takes both values");
    like (s, "\"command\":\"hostname\"", "command after --");
    free (s);
    char *a9[] = { "submit", "--target", "a", "b", "c", NULL };
    s = submit_json (a9, &e);
    like (s, "\"targets\":[\"a\"]", "without --, the first word after the value is the command");
    like (s, "\"command\":\"b\"", "command b");
    free (s);

    char *a5[] = { "submit", "--target", "h", "--", "--weird", NULL };
    s = submit_json (a5, &e);
    like (s, "\"command\":\"--weird\"", "-- lets the command start with a dash");
    like (s, "\"required_gpus\":null", "no GPUs anywhere: required_gpus null");
    like (s, "\"targets\":[\"h\"]", "single target");
    free (s);

    char *a6[] = { "submit", "--memory", "2k", "--wait", "--poll-interval", "0.2", "true", NULL };
    struct args_submit o;
    ok (args_parse_submit (ARGC (a6), a6, &o, &e) == 0, "--wait --poll-interval 0.2 parse");
    ok (o.wait && o.poll_interval > 0.19 && o.poll_interval < 0.21, "wait and interval set");
    is_int (o.memory, 2000, "2k is 2000 bytes");
    args_submit_free (&o);

    static const struct {
        char *argv[8];
        const char *why;
    } bad[] = {
        { { "submit", NULL }, "missing COMMAND" },
        { { "submit", "--cores", "2", NULL }, "missing COMMAND" },
        { { "submit", "--", NULL }, "missing COMMAND" },
        { { "submit", "--cores", "-1", "x", NULL }, "--cores `-1`" },
        { { "submit", "--cores", "two", "x", NULL }, "--cores `two`" },
        { { "submit", "--memory", "12X", "x", NULL }, "12X" },
        { { "submit", "--env", "1A=b", "x", NULL }, "--env `1A=b`" },
        { { "submit", "--target", "host:abc", "x", NULL }, "NUMA id" },
        { { "submit", "--retries", "-2", "x", NULL }, "--retries `-2`" },
        { { "submit", "--mount", "/only", "x", NULL }, "--mount `/only`" },
        { { "submit", "--container", "", "x", NULL }, "--container" },
        { { "submit", "--poll-interval", "0", "x", NULL }, "--poll-interval `0`" },
        { { "submit", "--frobnicate", "x", NULL }, "unknown option `--frobnicate`" },
        { { "submit", "--target", NULL }, "--target needs a value" },
        { { "submit", "", NULL }, "COMMAND is empty" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear (&e);
        s = submit_json ((char **)bad[i].argv, &e);
        ok (s == NULL, "bad submit #%zu rejected", i);
        like (e.text, bad[i].why, "bad submit #%zu message", i);
        free (s);
    }

    char *a7[] = { "submit", "--help", NULL };
    ok (args_parse_submit (ARGC (a7), a7, &o, &e) == 0 && o.help, "--help without a command");
    args_submit_free (&o);
    args_submit_free (&o); /* twice is harmless */
}

static void test_sweep (void)
{
    struct err e = { 0 };
    char *a1[] = { "submit", "--sweep", "--max-running", "3", "--container", "NULL", "--",
                   "python", "x.py", "span:{1..3}", "span:[a,b]", NULL };
    char *s = submit_json (a1, &e);
    like (s, "\"sweep\":true", "--sweep sends sweep: true");
    like (s, "\"max_running\":3", "--max-running 3 sends max_running");
    like (s, "\"arguments\":[\"x.py\",\"span:{1..3}\",\"span:[a,b]\"]",
          "the spans travel unexpanded (the host expands them)");
    free (s);
    char *a2[] = { "submit", "echo", "span:{1..3}", NULL };
    s = submit_json (a2, &e);
    ok (s && !strstr (s, "sweep") && !strstr (s, "max_running"),
        "without --sweep neither field is sent");
    free (s);
    char *a3[] = { "submit", "--max-running=2", "echo", NULL };
    s = submit_json (a3, &e);
    like (s, "\"max_running\":2", "--max-running=N form");
    free (s);
    static const struct {
        char *argv[6];
        const char *why;
    } bad[] = {
        { { "submit", "--max-running", "0", "x", NULL }, "--max-running `0`" },
        { { "submit", "--max-running", "-1", "x", NULL }, "--max-running `-1`" },
        { { "submit", "--max-running", "100001", "x", NULL }, "between 1 and 100000" },
        { { "submit", "--max-running", NULL }, "--max-running needs a value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear (&e);
        s = submit_json ((char **)bad[i].argv, &e);
        ok (s == NULL, "bad sweep option #%zu rejected", i);
        like (e.text, bad[i].why, "bad sweep option #%zu message: %s", i, e.text);
        free (s);
    }
}

static void test_kill (void)
{
    struct err e = { 0 };
    uint64_t id = 9, batch = 9;
    bool json = false, help = false;
    char *a1[] = { "kill", "123", NULL };
    ok (args_parse_kill (ARGC (a1), a1, &id, &batch, &json, &help, &e) == 0 && id == 123
            && batch == 0,
        "kill TASK_ID");
    char *a2[] = { "kill", "--batch", "456", "--json", NULL };
    ok (args_parse_kill (ARGC (a2), a2, &id, &batch, &json, &help, &e) == 0 && id == 0
            && batch == 456 && json,
        "kill --batch BATCH_ID --json");
    char *a3[] = { "kill", "--batch=789", NULL };
    ok (args_parse_kill (ARGC (a3), a3, &id, &batch, &json, &help, &e) == 0 && batch == 789,
        "kill --batch=ID");
    char *a4[] = { "kill", "--help", NULL };
    ok (args_parse_kill (ARGC (a4), a4, &id, &batch, &json, &help, &e) == 0 && help,
        "kill --help");
    help = false;
    static const struct {
        char *argv[5];
        const char *why;
    } bad[] = {
        { { "kill", NULL }, "missing TASK_ID" },
        { { "kill", "1", "--batch", "2", NULL }, "not both" },
        { { "kill", "--batch", "x", NULL }, "invalid --batch `x`" },
        { { "kill", "--batch", "0", NULL }, "invalid --batch `0`" },
        { { "kill", "--batch", NULL }, "--batch needs a value" },
        { { "kill", "1", "2", NULL }, "unexpected argument `2`" },
        { { "kill", "--force", "1", NULL }, "unknown option `--force`" },
        { { "kill", "abc", NULL }, "invalid task ID `abc`" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int argc = 0;
        while (bad[i].argv[argc])
            argc++;
        err_clear (&e);
        ok (args_parse_kill (argc, (char **)bad[i].argv, &id, &batch, &json, &help, &e) < 0,
            "bad kill #%zu rejected", i);
        like (e.text, bad[i].why, "bad kill #%zu message: %s", i, e.text);
    }
}

static void test_hakurun (void)
{
    struct args_hakurun o;
    struct err e = { 0 };
    char *a1[] = { "hakurun", "echo", "--parallel", "span:{1..2}", NULL };
    ok (args_parse_hakurun (ARGC (a1), a1, &o, &e) == 0, "hakurun APP ARGS");
    ok (o.app == 1 && !o.parallel && o.jobs == 0 && !o.dry_run,
        "options stop at APP: a later --parallel belongs to the program");
    char *a2[] = { "hakurun", "--parallel", "-n", "-q", "python3", "-c", "x", NULL };
    ok (args_parse_hakurun (ARGC (a2), a2, &o, &e) == 0 && o.parallel && o.dry_run && o.quiet
            && o.app == 4,
        "--parallel -n -q before APP");
    char *a3[] = { "hakurun", "--jobs", "3", "--dry-run", "--verbose", "x", NULL };
    ok (args_parse_hakurun (ARGC (a3), a3, &o, &e) == 0 && o.jobs == 3 && o.parallel
            && o.dry_run && o.verbose && o.app == 5,
        "--jobs N implies --parallel");
    char *a4[] = { "hakurun", "-j", "2", "--", "--weird", "a", NULL };
    ok (args_parse_hakurun (ARGC (a4), a4, &o, &e) == 0 && o.jobs == 2 && o.app == 4,
        "-j N and -- before an APP that starts with a dash");
    char *a5[] = { "hakurun", "--jobs=8", "mod:func", NULL };
    ok (args_parse_hakurun (ARGC (a5), a5, &o, &e) == 0 && o.jobs == 8 && o.app == 2,
        "--jobs=N");
    char *a6[] = { "hakurun", "--help", NULL };
    ok (args_parse_hakurun (ARGC (a6), a6, &o, &e) == 0 && o.help && o.app == 2,
        "--help without APP");
    static const struct {
        char *argv[5];
        const char *why;
    } bad[] = {
        { { "hakurun", NULL }, "missing APP" },
        { { "hakurun", "--parallel", NULL }, "missing APP" },
        { { "hakurun", "--", NULL }, "missing APP" },
        { { "hakurun", "--jobs", "0", "x", NULL }, "invalid --jobs `0`" },
        { { "hakurun", "--jobs", "many", "x", NULL }, "invalid --jobs `many`" },
        { { "hakurun", "--jobs", NULL }, "--jobs needs a value" },
        { { "hakurun", "--fast", "x", NULL }, "unknown option `--fast`" },
        { { "hakurun", "", NULL }, "APP is empty" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int argc = 0;
        while (bad[i].argv[argc])
            argc++;
        err_clear (&e);
        ok (args_parse_hakurun (argc, (char **)bad[i].argv, &o, &e) < 0,
            "bad hakurun #%zu rejected", i);
        like (e.text, bad[i].why, "bad hakurun #%zu message: %s", i, e.text);
    }
}

static void test_list (void)
{
    struct args_list o;
    struct err e = { 0 };
    char *p;
    char *a1[] = { "list", NULL };
    ok (args_parse_list (ARGC (a1), a1, &o, &e) == 0, "bare list");
    p = args_list_path (&o, 0);
    is_str (p, "/tasks", "bare list path");
    free (p);
    char *a2[] = { "list",  "--status", "running,queued", "--node", "n1", "--batch",
                   "77",    "--limit",  "5",              "--all",  NULL };
    ok (args_parse_list (ARGC (a2), a2, &o, &e) == 0 && o.all, "list with every filter");
    p = args_list_path (&o, 123);
    is_str (p, "/tasks?status=running,queued&node=n1&batch_id=77&limit=5&before=123",
            "list path with filters and paging");
    free (p);
    const char *why[] = { "unknown status `runing`", "--limit `0`", "--node `a b`", "--batch `x`",
                          "unexpected argument" };
    char *b1[] = { "list", "--status", "running,runing", NULL };
    char *b2[] = { "list", "--limit", "0", NULL };
    char *b3[] = { "list", "--node", "a b", NULL };
    char *b4[] = { "list", "--batch", "x", NULL };
    char *b5[] = { "list", "extra", NULL };
    char **bad[] = { b1, b2, b3, b4, b5 };
    for (size_t i = 0; i < 5; i++) {
        int argc = 0;
        while (bad[i][argc])
            argc++;
        ok (args_parse_list (argc, bad[i], &o, &e) < 0, "bad list #%zu rejected", i);
        like (e.text, why[i], "bad list #%zu message", i);
    }
}

static void test_output (void)
{
    char buf[32];
    is_str (output_size (999, buf, sizeof buf), "999", "size below 1K");
    is_str (output_size (1500, buf, sizeof buf), "1.5K", "1.5K");
    is_str (output_size (16000000000LL, buf, sizeof buf), "16.0G", "16.0G");
    is_str (output_time ("2025-06-01T10:00:00.123456", buf, sizeof buf), "2025-06-01 10:00:00",
            "time shortened");
    is_str (output_time (NULL, buf, sizeof buf), "-", "null time");
    char *c = output_clean ("a\x1b[2Jb\n");
    is_str (c, "a?[2Jb?", "control characters replaced");
    free (c);
    json_t *args = json_pack ("[s,s,s]", "-c", "print(1)", "");
    json_t *cmd = json_string ("python");
    c = output_command_line (cmd, args);
    is_str (c, "python -c 'print(1)' ''", "command line quoting");
    free (c);
    json_decref (args);
    json_decref (cmd);

    char *d = cli_error_detail ("{\"detail\":\"Task id not found\"}", 30);
    is_str (d, "Task id not found", "detail string extracted");
    free (d);
    d = cli_error_detail ("{\"detail\":[{\"msg\":\"x\"}]}", 24);
    is_str (d, "[{\"msg\":\"x\"}]", "non-string detail as JSON");
    free (d);
    d = cli_error_detail ("Internal Server Error\n", 22);
    is_str (d, "Internal Server Error", "raw body when not JSON");
    free (d);
    ok (cli_status_is_final ("killed_oom") && cli_status_is_final ("lost")
            && !cli_status_is_final ("running") && !cli_status_is_final (NULL),
        "final statuses");
    is_str (cli_prog_name ("/usr/bin/hakuriver.task"), "hakuriver.task", "prog name from link");
    is_str (cli_prog_name ("client"), "hakuriver.client", "prog name from word");
}

int main (void)
{
    test_targets ();
    test_env ();
    test_numbers ();
    test_global ();
    test_simple ();
    test_submit ();
    test_sweep ();
    test_kill ();
    test_hakurun ();
    test_list ();
    test_output ();
    return done_testing ();
}
