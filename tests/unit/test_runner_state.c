/* test_runner_state.c - runner state DB (tasks, outbox, finished set, meta) and node identity */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/tap.h"
#include "runner/state.h"

static char tmpdir[] = "/tmp/test_runner_state.XXXXXX";
static char dbpath[600];

static struct state_task mk (uint64_t id, int attempt, const char *status, const char *spec)
{
    struct state_task t = { .task_id = id, .attempt = attempt, .spec = (char *)spec };
    snprintf (t.status, sizeof t.status, "%s", status);
    return t;
}

static void test_tasks (struct state *st)
{
    struct err e = { 0 };
    /* A real snowflake: needs all 63 bits. */
    uint64_t big = 7530375621982027776ULL;
    struct state_task a = mk (big, 1, STATE_PENDING, "{\"command\":\"echo\"}");
    struct state_task b = mk (42, 2, STATE_PENDING, NULL);
    is_int (state_task_add (st, &a, &e), 0, "add task");
    is_int (state_task_add (st, &b, &e), 0, "add second task (no spec)");
    struct state_task dup = mk (big, 1, STATE_RUNNING, "{}");
    is_int (state_task_add (st, &dup, &e), 1, "adding the same (task, attempt) reports 1");
    struct state_task other = mk (big, 2, STATE_PENDING, "{}");
    is_int (state_task_add (st, &other, &e), 0, "another attempt of the same task is new");

    struct state_task got;
    is_int (state_task_get (st, big, 1, &got, &e), 1, "get finds the task");
    ok (got.task_id == big, "63-bit task id survives");
    is_str (got.status, STATE_PENDING, "duplicate add left the row unchanged");
    is_str (got.spec, "{\"command\":\"echo\"}", "spec stored");
    is_str (got.started_at, "", "started_at empty before start");
    is_int (got.shim_pid, 0, "shim_pid 0 before start");
    state_task_clear (&got);
    ok (got.spec == NULL, "clear frees the spec");

    struct state_task upd = mk (big, 1, STATE_RUNNING, NULL);
    upd.shim_pid = 4242;
    snprintf (upd.cgroup, sizeof upd.cgroup, "hakuriver/task-%llu-1", (unsigned long long)big);
    snprintf (upd.started_at, sizeof upd.started_at, "2025-06-01T10:00:00.123456");
    is_int (state_task_update (st, &upd, &e), 0, "update task");
    is_int (state_task_get (st, big, 1, &got, &e), 1, "get after update");
    is_str (got.status, STATE_RUNNING, "status updated");
    is_int (got.shim_pid, 4242, "shim pid updated");
    like (got.cgroup, "hakuriver/task-", "cgroup updated");
    is_str (got.started_at, "2025-06-01T10:00:00.123456", "started_at updated");
    is_str (got.spec, "{\"command\":\"echo\"}", "update keeps the spec");
    state_task_clear (&got);

    struct state_task ghost = mk (999, 1, STATE_RUNNING, NULL);
    e.code = 0;
    ok (state_task_update (st, &ghost, &e) < 0 && e.code == ENOENT,
        "updating an absent task fails with ENOENT");
    e.code = 0;
    ok (state_task_set_status (st, 999, 1, STATE_PAUSED, &e) < 0 && e.code == ENOENT,
        "set_status on an absent task fails with ENOENT");
    is_int (state_task_set_status (st, big, 1, STATE_PAUSED, &e), 0, "set_status");
    is_int (state_task_get (st, big, 1, &got, &e), 1, "get after set_status");
    is_str (got.status, STATE_PAUSED, "status is paused");
    is_int (got.shim_pid, 4242, "set_status leaves the pid");
    state_task_clear (&got);

    struct state_task untouched = { .task_id = 7, .spec = NULL };
    is_int (state_task_get (st, 999, 1, &untouched, &e), 0, "get of an absent task returns 0");
    is_int (untouched.task_id, 7, "output untouched when absent");

    struct state_task *v;
    size_t n;
    is_int (state_task_list (st, &v, &n, &e), 0, "list");
    is_int (n, 3, "three tasks listed");
    ok (n == 3 && v[0].task_id == big && v[0].attempt == 1 && v[1].task_id == 42
            && v[2].attempt == 2,
        "listed oldest first");
    state_task_list_free (v, n);
    state_task_list_free (NULL, 0);

    is_int (state_task_known (st, 42, 2, &e), 1, "supervised task is known");
    is_int (state_task_known (st, 42, 3, &e), 0, "other attempt is unknown");
    is_int (state_task_remove (st, big, 2, &e), 0, "remove");
    is_int (state_task_remove (st, big, 2, &e), 0, "removing again is fine");
    is_int (state_task_known (st, big, 2, &e), 0, "removed task is not known");
    is_int (state_task_finish (st, 42, 2, &e), 0, "finish");
    is_int (state_task_get (st, 42, 2, &got, &e), 0, "finished task left the tasks table");
    is_int (state_task_known (st, 42, 2, &e), 1, "finished task stays known (dedup of runs)");
    is_int (state_task_finish (st, 5, 1, &e), 0, "finish of a never-added task (refused run)");
    is_int (state_task_known (st, 5, 1, &e), 1, "refused run is known");
    is_int (state_commit (st, &e), 0, "commit");
    is_int (state_commit (st, &e), 0, "commit with nothing pending is a no-op");
}

static void test_outbox (struct state *st)
{
    struct err e = { 0 };
    struct state_outbox_entry *v;
    size_t n;
    is_int (state_outbox_count (st, &e), 0, "outbox starts empty");
    is_int (state_outbox_peek (st, 10, &v, &n, &e), 0, "peek on empty outbox");
    is_int (n, 0, "nothing to peek");
    state_outbox_free (v, n);

    int64_t seq[5];
    char body[64];
    for (int i = 0; i < 5; i++) {
        snprintf (body, sizeof body, "{\"task_id\":%d,\"status\":\"running\"}", i);
        if (state_outbox_append (st, body, &seq[i], &e) < 0)
            break;
    }
    ok (seq[0] < seq[1] && seq[3] < seq[4], "sequence numbers increase");
    is_int (state_outbox_append (st, "{}", NULL, &e), 0, "append without asking the seq");
    is_int (state_outbox_count (st, &e), 6, "six entries");
    is_int (state_outbox_peek (st, 3, &v, &n, &e), 0, "peek 3");
    is_int (n, 3, "three returned");
    ok (n == 3 && v[0].seq == seq[0] && v[2].seq == seq[2], "oldest first");
    is_str (n ? v[1].body : NULL, "{\"task_id\":1,\"status\":\"running\"}", "body intact");
    state_outbox_free (v, n);
    is_int (state_outbox_delete_upto (st, seq[2], &e), 0, "delete up to the third");
    is_int (state_outbox_count (st, &e), 3, "three left");
    is_int (state_outbox_peek (st, 100, &v, &n, &e), 0, "peek all");
    ok (n == 3 && v[0].seq == seq[3], "the oldest left is the fourth");
    state_outbox_free (v, n);
    is_int (state_outbox_delete_upto (st, seq[0], &e), 0, "delete up to an old seq");
    is_int (state_outbox_count (st, &e), 3, "deleting already-deleted entries changes nothing");
    is_int (state_commit (st, &e), 0, "commit");
}

static void test_meta (struct state *st)
{
    struct err e = { 0 };
    int64_t v = -5;
    is_int (state_meta_get_int (st, "ack", &v, &e), 0, "absent meta key returns 0");
    is_int (v, -5, "output untouched when absent");
    is_int (state_meta_set_int (st, "ack", 17, &e), 0, "set ack");
    is_int (state_meta_set_int (st, "ack", 1LL << 40, &e), 0, "overwrite ack");
    is_int (state_meta_get_int (st, "ack", &v, &e), 1, "get ack");
    ok (v == 1LL << 40, "ack value read back");
    is_int (state_commit (st, &e), 0, "commit");
}

/* Dropping acknowledged outbox entries alone does not commit; the next writes take it along. */
static void test_lazy_commit (void)
{
    struct err e = { 0 };
    int64_t seq = 0;
    char path[600];
    snprintf (path, sizeof path, "%s/lazy.db", tmpdir);
    struct state *st = state_open (path, &e);
    ok (st != NULL, "open a second state db");
    if (!st)
        return;
    is_int (state_outbox_append (st, "{\"lazy\":1}", &seq, &e), 0, "append");
    is_int (state_commit (st, &e), 0, "an append is committed");
    is_int (state_outbox_delete_upto (st, seq, &e), 0, "drop it (acknowledged)");
    is_int (state_commit (st, &e), 1, "a transaction that only dropped entries is kept open");
    is_int (state_meta_set_int (st, "lazy", 1, &e), 0, "a write joins it");
    is_int (state_commit (st, &e), 0, "and commits both");
    is_int (state_outbox_delete_upto (st, seq, &e), 0, "drop again (nothing)");
    is_int (state_flush (st, &e), 0, "flush commits whatever is open");
    is_int (state_commit (st, &e), 0, "nothing open afterwards");
    state_close (st);
}

/* Commits are flushed to the disk by state_sync only, but a killed runner loses none. */
static void test_sync (struct state *st)
{
    struct err e = { 0 };
    ok (state_unsynced (st), "commits since the last sync are reported unsynced");
    is_int (state_sync (st, &e), 0, "sync (%s)", e.text);
    ok (!state_unsynced (st), "nothing unsynced after sync");
    is_int (state_sync (st, &e), 0, "sync with nothing to do");

    pid_t pid = fork ();
    if (pid == 0) {
        struct state *c = state_open (dbpath, &e);
        struct state_task t = mk (88, 1, STATE_RUNNING, "{}");
        if (!c || state_task_add (c, &t, &e) < 0 || state_commit (c, &e) < 0)
            _exit (1);
        kill (getpid (), SIGKILL); /* no close, no sync: as kill -9 of the runner */
        _exit (2);
    }
    int status = 0;
    waitpid (pid, &status, 0);
    ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL, "writer killed after its commit");
    is_int (state_task_known (st, 88, 1, &e), 1, "a commit of a killed process is kept");
    is_int (state_task_remove (st, 88, 1, &e), 0, "clean up");
    is_int (state_commit (st, &e), 0, "commit");
}

static void test_reopen (void)
{
    struct err e = { 0 };
    struct state *st = state_open (dbpath, &e);
    ok (st != NULL, "reopen");
    if (!st)
        return;
    struct state_task *v;
    size_t n;
    is_int (state_task_list (st, &v, &n, &e), 0, "list after reopen");
    is_int (n, 1, "one task persisted");
    ok (n == 1 && v[0].shim_pid == 4242 && strcmp (v[0].status, STATE_PAUSED) == 0,
        "its fields persisted");
    state_task_list_free (v, n);
    is_int (state_outbox_count (st, &e), 3, "outbox persisted");
    is_int (state_task_known (st, 42, 2, &e), 1, "finished set persisted");
    int64_t ack = 0;
    ok (state_meta_get_int (st, "ack", &ack, &e) == 1 && ack == 1LL << 40, "ack persisted");

    /* Uncommitted writes are rolled back by close: a crash loses the whole iteration. */
    struct state_task t = mk (77, 1, STATE_PENDING, "{}");
    is_int (state_task_add (st, &t, &e), 0, "add without commit");
    is_int (state_outbox_append (st, "{\"x\":1}", NULL, &e), 0, "append without commit");
    state_close (st);
    st = state_open (dbpath, &e);
    ok (st != NULL, "reopen again");
    if (!st)
        return;
    is_int (state_task_known (st, 77, 1, &e), 0, "uncommitted task is gone");
    is_int (state_outbox_count (st, &e), 3, "uncommitted outbox entry is gone");
    state_close (st);

    struct stat sb;
    ok (stat (dbpath, &sb) == 0 && (sb.st_mode & 077) == 0, "state db is private (0600)");
}

static void test_open_errors (void)
{
    struct err e = { 0 };
    struct state *st = state_open ("/nonexistent-dir/sub/runner-state.db", &e);
    ok (st == NULL, "open in a missing directory fails");
    like (e.text, "nonexistent-dir", "error names the path");
    char junk[700];
    snprintf (junk, sizeof junk, "%s/junk.db", tmpdir);
    FILE *f = fopen (junk, "w");
    fputs ("this is not a database, just some text that is long enough to fool no one......"
           "................................................................................",
           f);
    fclose (f);
    st = state_open (junk, &e);
    ok (st == NULL, "open of a non-database file fails");
    errno = 1234;
    state_close (NULL);
    is_int (errno, 1234, "state_close(NULL) is safe and preserves errno");
}

static void test_node_id (void)
{
    struct err e = { 0 };
    char dir[600], id1[33], id2[33], path[700];
    snprintf (dir, sizeof dir, "%s/ident", tmpdir);
    mkdir (dir, 0700);
    snprintf (path, sizeof path, "%s/node-id", dir);
    is_int (state_node_id (dir, id1, &e), 0, "node id created");
    is_int (strlen (id1), 32, "32 characters");
    is_int (strspn (id1, "0123456789abcdef"), 32, "all lowercase hex");
    struct stat sb;
    ok (stat (path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "node-id file mode 0600");
    is_int (state_node_id (dir, id2, &e), 0, "read again");
    is_str (id2, id1, "node id is stable");

    char other[600], id3[33];
    snprintf (other, sizeof other, "%s/ident2", tmpdir);
    mkdir (other, 0700);
    is_int (state_node_id (other, id3, &e), 0, "second identity");
    ok (strcmp (id3, id1) != 0, "two state dirs get different ids");

    /* A corrupt file is an error, not a silent new identity. */
    FILE *f = fopen (path, "w");
    fputs ("not-an-id\n", f);
    fclose (f);
    memset (id2, 'x', sizeof id2);
    ok (state_node_id (dir, id2, &e) < 0, "corrupt node-id file is an error");
    like (e.text, "node-id", "error names the file");
    ok (id2[0] == 'x', "output untouched on error");
    f = fopen (path, "w");
    fputs (id1, f); /* no trailing newline is fine too */
    fclose (f);
    is_int (state_node_id (dir, id2, &e), 0, "hand-written id without newline accepted");
    is_str (id2, id1, "same id");
    ok (state_node_id ("/nonexistent-dir", id2, &e) < 0, "missing directory is an error");
}

int main (void)
{
    if (!mkdtemp (tmpdir)) {
        perror ("mkdtemp");
        return 1;
    }
    snprintf (dbpath, sizeof dbpath, "%s/runner-state.db", tmpdir);
    struct err e = { 0 };
    struct state *st = state_open (dbpath, &e);
    ok (st != NULL, "open new state db (%s)", st ? "ok" : e.text);
    if (!st)
        return done_testing ();
    test_tasks (st);
    test_outbox (st);
    test_meta (st);
    test_lazy_commit ();
    test_sync (st);
    state_close (st);
    test_reopen ();
    test_open_errors ();
    test_node_id ();
    char cmd[700];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
        diag ("could not remove %s", tmpdir);
    return done_testing ();
}
