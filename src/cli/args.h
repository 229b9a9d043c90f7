/* args.h - argument parsing shared by the user CLIs: global options, targets, sizes, env, ids.
 *
 * Every parser here is pure (no printing, no exiting, no network) so that the unit tests can
 * drive it with argv arrays. A usage error returns -1 with e->code = EINVAL and e->text naming
 * the flag and the offending value; the caller prints it and exits 2. */
#ifndef HR_CLI_ARGS_H
#define HR_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

/* Options that come before the subcommand (and --json/--help after it). */
struct args_global {
    const char *config; /* --config/-c PATH, NULL when absent (points into argv) */
    bool json;          /* --json */
    bool help;          /* --help/-h */
    int sub;            /* index in argv of the subcommand word, argc when there is none */
};

/* One --target: "HOST", "HOST:NUMA", "HOST::GPU,GPU" or "HOST:NUMA::GPU". */
struct args_target {
    char *name;  /* "HOST" or "HOST:NUMA", as sent in `targets` */
    int *gpus;   /* GPU ids (NULL when none) */
    size_t ngpus;
};

/* Parsed `task submit` options. Strings are owned copies; `command` points into argv. */
struct args_submit {
    struct args_target *targets;
    size_t ntargets;
    char **env_keys; /* parallel to env_vals; a repeated key keeps its last value */
    char **env_vals;
    size_t nenv;
    int64_t cores;   /* default 1 */
    int64_t memory;  /* bytes, -1 when --memory was not given */
    char *container; /* NULL when not given */
    char *image;     /* --image REF: run this Docker image directly; NULL when not given */
    bool privileged;
    char **mounts;   /* NULL-terminated or NULL when --mount was not given */
    size_t nmounts;
    int64_t retries; /* -1 when --retries was not given */
    bool sweep;      /* --sweep: the host expands span: arguments into one batch */
    int64_t max_running; /* --max-running N: at most N tasks of the batch at once; 0 = no cap */
    bool wait;
    double poll_interval; /* seconds, default 1 */
    bool json;
    bool help;
    char **command;  /* command words, NULL-terminated (points into argv) */
    int ncommand;
    /* vps submit only */
    bool vps;        /* parsed by args_parse_vps_submit: --cores defaults to 0, no command */
    bool no_wait;    /* --no-wait: do not wait for the VPS to answer over SSH */
    const char **keys;      /* --public-key-string values (point into argv) */
    size_t nkeys;
    const char **key_files; /* --public-key-file paths (point into argv) */
    size_t nkey_files;
};

/* Parsed `task list` options. */
struct args_list {
    const char *status; /* "running,queued" (validated), NULL when absent */
    const char *node;   /* hostname, NULL when absent */
    uint64_t batch;     /* 0 when absent */
    int limit;          /* 1..10000, 0 when absent (the host's default, 100, applies) */
    bool all;           /* follow X-Next-Before until every matching task is listed */
    bool json;
    bool help;
};

/* Parses the options before the subcommand: --config PATH, --config=PATH, -c PATH, --json,
 * --help/-h. Stops at the first word that is not an option; G->sub is its index (ARGC when
 * none). ARGV[0] is the program name and is skipped. Returns 0 or -1 (usage error). */
int args_parse_global (int argc, char **argv, struct args_global *g, struct err *e);

/* Parses a subcommand with only positionals, --json and --help/-h (status, kill, nodes...).
 * ARGV[0] is the subcommand word. Stores up to MAXPOS positionals in POS (pointers into argv)
 * and their count in *NPOS. Fewer than MINPOS or more than MAXPOS is a usage error unless
 * --help was given. Returns 0 or -1. */
int args_parse_simple (int argc, char **argv, int minpos, int maxpos, const char **pos,
                       int *npos, bool *json, bool *help, struct err *e);

/* Parses one --target value into OUT (caller frees with args_target_free). Returns 0 or -1
 * with e->text such as "invalid target `host:abc`: NUMA id must be a non-negative integer". */
int args_parse_target (const char *value, struct args_target *out, struct err *e);
void args_target_free (struct args_target *t);

/* Splits "KEY=VALUE" on the first '='. KEY must match [A-Za-z_][A-Za-z0-9_]*; VALUE may be
 * empty. Sets *KEY and *VAL to new strings (caller frees) on success. Returns 0 or -1. */
int args_parse_env (const char *value, char **key, char **val, struct err *e);

/* Parses a non-negative decimal integer not above MAX for option FLAG (used in messages:
 * "invalid --cores `-1`: expected an integer between 0 and 4096"). Returns 0 or -1. */
int args_parse_uint (const char *flag, const char *value, int64_t max, int64_t *out,
                     struct err *e);

/* Parses a task ID: decimal digits only, at most 63 bits. Returns 0 or -1 with
 * "invalid task ID `abc`: expected a decimal number". */
int args_parse_task_id (const char *value, uint64_t *out, struct err *e);

/* Checks a hostname: non-empty, [A-Za-z0-9._-] only. Returns 0 or -1 naming WHAT. */
int args_check_hostname (const char *what, const char *value, struct err *e);

/* Parses `submit [options] [--] COMMAND [ARGS...]`; ARGV[0] is "submit". Fills O (zeroed and
 * defaulted first; free with args_submit_free even on failure). A missing command is an
 * error unless --help was given. Returns 0 or -1. */
int args_parse_submit (int argc, char **argv, struct args_submit *o, struct err *e);
void args_submit_free (struct args_submit *o);

/* Parses `vps submit [options]` (the submit options minus --env/--sweep/--max-running, at
 * most one --target, --cores defaulting to 0, plus --public-key-string KEY and
 * --public-key-file PATH, each repeatable, the two kinds mutually exclusive; no command).
 * Keys are neither read nor checked here. Returns 0 or -1. */
int args_parse_vps_submit (int argc, char **argv, struct args_submit *o, struct err *e);

/* Builds the POST /submit body from parsed options (see docs/cli.md for the fields).
 * Returns a new reference (caller json_decref()s); never NULL for a parsed O. */
json_t *args_submit_body (const struct args_submit *o);

/* Parsed `hakurun` options (those before APP). */
struct args_hakurun {
    bool parallel;   /* --parallel, or implied by --jobs */
    int64_t jobs;    /* --jobs N, 0 when absent (the CPU count applies when parallel) */
    bool dry_run;    /* --dry-run/-n: print the commands, run nothing */
    bool quiet;      /* --quiet/-q: warnings and errors only */
    bool verbose;    /* --verbose/-v: also log each combination as it starts */
    bool help;
    int app;         /* index of APP in argv; argc when there is none (only with --help) */
};

/* Parses `hakurun [OPTIONS] [--] APP [ARG...]`; ARGV[0] is the program name. Options end at
 * the first word that is not an option or after `--`; everything from APP on is left to the
 * caller. A missing APP is an error unless --help was given. Returns 0 or -1. */
int args_parse_hakurun (int argc, char **argv, struct args_hakurun *o, struct err *e);

/* Parses `kill [--json] (TASK_ID | --batch BATCH_ID)`; ARGV[0] is "kill". Exactly one of
 * *ID and *BATCH is set non-zero unless --help was given. Returns 0 or -1. */
int args_parse_kill (int argc, char **argv, uint64_t *id, uint64_t *batch, bool *json,
                     bool *help, struct err *e);

/* Parses `list [--status S[,S]] [--node H] [--batch ID] [--limit N] [--all]`; ARGV[0] is
 * "list". Statuses are checked against the known names. Returns 0 or -1. */
int args_parse_list (int argc, char **argv, struct args_list *o, struct err *e);

/* Builds the path and query for GET /tasks from O, with BEFORE (0 = none) for paging.
 * Returns a new string such as "/tasks?status=running&limit=50"; caller frees. */
char *args_list_path (const struct args_list *o, uint64_t before);

/* Parses `stdout|stderr [--tail BYTES] [--json] TASK_ID`; ARGV[0] is the subcommand word.
 * *TAIL is -1 without --tail. A missing TASK_ID is an error unless --help was given; the ID
 * itself is checked with args_parse_task_id. Returns 0 or -1. */
int args_parse_log (int argc, char **argv, uint64_t *id, int64_t *tail, bool *json, bool *help,
                    struct err *e);

/* Parses a poll interval in seconds ("1", "0.2"): finite, 0.01 to 3600. Returns 0 or -1. */
int args_parse_seconds (const char *flag, const char *value, double *out, struct err *e);

#endif
