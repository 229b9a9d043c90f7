/* cli.h - shared context of the user CLIs (hakuriver.client, hakuriver.task): config, host
 * connection, error reporting and the subcommands both programs offer.
 *
 * Exit codes everywhere: CLI_OK (0) success, CLI_FAIL (1) any failure including an HTTP error
 * or an unreachable host, CLI_USAGE (2) bad command line. */
#ifndef HR_CLI_CLI_H
#define HR_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/http_client.h"
#include "common/conf.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli {
    const char *prog;    /* "hakuriver.client", "hakuriver.task": prefix of messages */
    const char *config;  /* --config PATH, NULL when absent */
    bool json;           /* print the host's JSON instead of tables */
    struct conf conf;    /* loaded by cli_open */
    bool conf_loaded;
    http_client_t *http; /* created by cli_open */
    void (*usage) (FILE *out); /* the program's usage text, printed for --help */
};

/* One subcommand of a program: its word and its handler (ARGV[0] is the word). */
struct cli_subcmd {
    const char *name;
    int (*fn) (struct cli *cli, int argc, char **argv);
};

/* The main of hakuriver.client / hakuriver.task: global options, then the subcommand named
 * by the first word, looked up in CMDS (N entries). Returns the exit status. */
int cli_dispatch (int argc, char **argv, void (*usage) (FILE *out),
                  const struct cli_subcmd *cmds, size_t n);

/* Returns the display name for ARGV0 and the program word: "hakuriver.task" whether invoked
 * through the link or as `hakuriver task`. */
const char *cli_prog_name (const char *word);

/* Sleeps SECONDS (fractions allowed), resuming after signals. */
void cli_sleep (double seconds);

/* Prints "PROG: error: MSG" and "Run `PROG --help` for usage." to stderr; returns CLI_USAGE. */
int cli_usage_error (const struct cli *cli, const char *msg);

/* Loads the configuration (conf_find + conf_load) and creates the HTTP client for
 * http://<host_reachable_address>:<host_port>. On failure prints the error to stderr and
 * returns CLI_FAIL; returns CLI_OK otherwise. */
int cli_open (struct cli *cli);

/* Releases what cli_open created. Safe to call after a failed or no cli_open. */
void cli_close (struct cli *cli);

/* Sends METHOD PATH with optional BODY. On a 2xx reply fills R and returns CLI_OK. Otherwise
 * prints the error to stderr ("error: <detail> (HTTP <status>)", an api_token hint on 401,
 * "error: cannot reach host at <url>: <why>" without a reply), leaves R empty and returns
 * CLI_FAIL. With QUIET set nothing is printed (used by retry loops). */
int cli_call (struct cli *cli, const char *method, const char *path, const json_t *body,
              long timeout_s, bool quiet, struct http_resp *r);

/* GETs PATH and writes a 2xx reply's body to SINK as it arrives (task logs). Errors are
 * printed as by cli_call. Returns CLI_OK or CLI_FAIL. */
int cli_get_to (struct cli *cli, const char *path, long timeout_s, FILE *sink);

/* Parses a 2xx reply body as JSON. Prints an error and returns NULL when it is not JSON. */
json_t *cli_parse_reply (struct cli *cli, const struct http_resp *r);

/* Extracts the message to show from an error reply BODY (LEN bytes): the `detail` string,
 * other `detail` values as compact JSON, or the raw body. Returns a new string; caller frees. */
char *cli_error_detail (const char *body, size_t len);

/* Subcommands shared by both programs. ARGV[0] is the subcommand word; the global options
 * are already in CLI. Each returns an exit code. */
int cli_cmd_status (struct cli *cli, int argc, char **argv);
int cli_cmd_kill (struct cli *cli, int argc, char **argv);
int cli_cmd_command (struct cli *cli, int argc, char **argv);

/* Prints a task object as a key/value block. */
void cli_print_task (const json_t *task);

/* Final task statuses: completed, failed, killed, killed_oom, lost. */
bool cli_status_is_final (const char *status);

#endif
