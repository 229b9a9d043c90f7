/* state.c - runner state in SQLite: supervised tasks, outbox of updates, finished set, meta */
#include "runner/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fileio.h"
#include "common/xalloc.h"

/* Keep this many finished (task_id, attempt) pairs for run de-duplication: a few days of
 * a busy node; each row is ~20 bytes. Pruned every PRUNE_EVERY inserts. */
#define DONE_KEEP   100000
#define PRUNE_EVERY 1000
/* Longest time a transaction holding only dropped outbox entries stays open (state_commit). */
#define LAZY_COMMIT_S 1.0

static const char *const sql_schema =
    "CREATE TABLE IF NOT EXISTS tasks ("
    "  task_id INTEGER NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,"
    "  shim_pid INTEGER NOT NULL DEFAULT 0, cgroup TEXT NOT NULL DEFAULT '',"
    "  spec TEXT, started_at TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (task_id, attempt));"
    /* seq is the rowid (max + 1): entries in flight are deleted only after the host's
     * answer, so a new entry always sorts after them; no AUTOINCREMENT, which writes its
     * sqlite_sequence row at every insert. Databases created before keep AUTOINCREMENT. */
    "CREATE TABLE IF NOT EXISTS outbox ("
    "  seq INTEGER PRIMARY KEY, body TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS done ("
    "  id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  UNIQUE (task_id, attempt));"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);";

enum {
    Q_TASK_ADD,
    Q_TASK_UPDATE,
    Q_TASK_SET_STATUS,
    Q_TASK_GET,
    Q_TASK_REMOVE,
    Q_TASK_LIST,
    Q_DONE_ADD,
    Q_DONE_HAS,
    Q_DONE_PRUNE,
    Q_OUTBOX_APPEND,
    Q_OUTBOX_PEEK,
    Q_OUTBOX_DELETE,
    Q_OUTBOX_COUNT,
    Q_META_GET,
    Q_META_SET,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    [Q_TASK_ADD] = "INSERT OR IGNORE INTO tasks (task_id, attempt, status, shim_pid, cgroup,"
                   " spec, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_TASK_UPDATE] = "UPDATE tasks SET status = ?3, shim_pid = ?4, cgroup = ?5,"
                      " started_at = ?6 WHERE task_id = ?1 AND attempt = ?2",
    [Q_TASK_SET_STATUS] = "UPDATE tasks SET status = ?3 WHERE task_id = ?1 AND attempt = ?2",
    [Q_TASK_GET] = "SELECT task_id, attempt, status, shim_pid, cgroup, spec, started_at"
                   " FROM tasks WHERE task_id = ?1 AND attempt = ?2",
    [Q_TASK_REMOVE] = "DELETE FROM tasks WHERE task_id = ?1 AND attempt = ?2",
    [Q_TASK_LIST] = "SELECT task_id, attempt, status, shim_pid, cgroup, spec, started_at"
                    " FROM tasks ORDER BY rowid",
    [Q_DONE_ADD] = "INSERT OR IGNORE INTO done (task_id, attempt) VALUES (?1, ?2)",
    [Q_DONE_HAS] = "SELECT 1 FROM done WHERE task_id = ?1 AND attempt = ?2"
                   " UNION ALL SELECT 1 FROM tasks WHERE task_id = ?1 AND attempt = ?2",
    [Q_DONE_PRUNE] = "DELETE FROM done WHERE id <= (SELECT max(id) FROM done) - ?1",
    [Q_OUTBOX_APPEND] = "INSERT INTO outbox (body) VALUES (?1)",
    [Q_OUTBOX_PEEK] = "SELECT seq, body FROM outbox ORDER BY seq LIMIT ?1",
    [Q_OUTBOX_DELETE] = "DELETE FROM outbox WHERE seq <= ?1",
    [Q_OUTBOX_COUNT] = "SELECT count(*) FROM outbox",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    /* prepared once like the rest: sqlite3_exec would parse them at every transaction */
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

struct state {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    bool in_tx;
    bool durable;          /* the open transaction holds more than dropped outbox entries */
    double tx_since;       /* CLOCK_MONOTONIC seconds when it was opened */
    bool unsynced;         /* commits since the last flush to disk (state_sync) */
    unsigned done_inserts;
};

static int db_error (struct state *st, struct err *e, const char *what)
{
    return err_set (e, EIO, "state db: %s: %s", what, sqlite3_errmsg (st->db));
}

/* Resets Q and returns it ready for binding. */
static sqlite3_stmt *stmt (struct state *st, int q)
{
    sqlite3_reset (st->q[q]);
    sqlite3_clear_bindings (st->q[q]);
    return st->q[q];
}

/* Steps a statement that returns no rows. Returns 0 or -1. */
static int run_write (struct state *st, sqlite3_stmt *s, struct err *e, const char *what)
{
    int rc = sqlite3_step (s);
    sqlite3_reset (s);
    if (rc != SQLITE_DONE)
        return db_error (st, e, what);
    return 0;
}

static double mono_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts the write transaction of this iteration if none is open. A LAZY write (dropping
 * outbox entries the host acknowledged) does not need a commit of its own: see
 * state_commit. */
static int begin_write_mode (struct state *st, bool lazy, struct err *e)
{
    if (!lazy)
        st->durable = true;
    if (st->in_tx)
        return 0;
    if (run_write (st, stmt (st, Q_BEGIN), e, "begin") < 0)
        return -1;
    st->in_tx = true;
    st->tx_since = mono_now ();
    return 0;
}

static int begin_write (struct state *st, struct err *e)
{
    return begin_write_mode (st, false, e);
}

struct state *state_open (const char *path, struct err *e)
{
    struct state *st = xcalloc (1, sizeof *st);
    if (sqlite3_open_v2 (path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL) != SQLITE_OK) {
        if (!st->db) {
            err_set (e, ENOMEM, "open state db `%s`", path);
            goto error;
        }
        err_set (e, EIO, "open state db `%s`: %s", path, sqlite3_errmsg (st->db));
        goto error;
    }
    sqlite3_busy_timeout (st->db, 5000);
    if (sqlite3_exec (st->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                      "PRAGMA foreign_keys=OFF;",
                      NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_exec (st->db, sql_schema, NULL, NULL, NULL) != SQLITE_OK) {
        err_set (e, EIO, "state db `%s`: %s", path, sqlite3_errmsg (st->db));
        goto error;
    }
    (void)chmod (path, 0600);
    for (int i = 0; i < Q_COUNT; i++) {
        if (sqlite3_prepare_v3 (st->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &st->q[i],
                                NULL) != SQLITE_OK) {
            err_set (e, EIO, "state db: prepare `%s`: %s", sql_text[i],
                     sqlite3_errmsg (st->db));
            goto error;
        }
    }
    return st;
error:
    state_close (st);
    return NULL;
}

void state_close (struct state *st)
{
    if (!st)
        return;
    int saved = errno;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize (st->q[i]);
    if (st->db) {
        if (st->in_tx)
            sqlite3_exec (st->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close (st->db);
    }
    free (st);
    errno = saved;
}

int state_commit (struct state *st, struct err *e)
{
    if (!st->in_tx)
        return 0;
    /* Only acknowledged outbox entries dropped: they ride with the next commit (within
     * LAZY_COMMIT_S). Lost in a crash, they would only be sent again (the host answers
     * "duplicate"). */
    if (!st->durable && mono_now () - st->tx_since < LAZY_COMMIT_S)
        return 1;
    return state_flush (st, e);
}

int state_flush (struct state *st, struct err *e)
{
    if (!st->in_tx)
        return 0;
    st->durable = false;
    if (run_write (st, stmt (st, Q_COMMIT), e, "commit") < 0) {
        if (!sqlite3_get_autocommit (st->db))
            (void)run_write (st, stmt (st, Q_ROLLBACK), NULL, "rollback");
        st->in_tx = false;
        return -1;
    }
    st->in_tx = false;
    st->unsynced = true;
    return 0;
}

bool state_unsynced (const struct state *st)
{
    return st->unsynced;
}

int state_sync (struct state *st, struct err *e)
{
    if (!st->unsynced || st->in_tx)
        return 0;
    /* A checkpoint syncs the WAL (everything committed so far) before it copies it into
     * the database file, then syncs that too. */
    int rc = sqlite3_wal_checkpoint_v2 (st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return db_error (st, e, "checkpoint");
    st->unsynced = false;
    return 0;
}

int state_task_add (struct state *st, const struct state_task *t, struct err *e)
{
    if (begin_write (st, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_TASK_ADD);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)t->task_id);
    sqlite3_bind_int (s, 2, t->attempt);
    sqlite3_bind_text (s, 3, t->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (s, 4, t->shim_pid);
    sqlite3_bind_text (s, 5, t->cgroup, -1, SQLITE_STATIC);
    if (t->spec)
        sqlite3_bind_text (s, 6, t->spec, -1, SQLITE_STATIC);
    sqlite3_bind_text (s, 7, t->started_at, -1, SQLITE_STATIC);
    if (run_write (st, s, e, "add task") < 0)
        return -1;
    return sqlite3_changes (st->db) == 1 ? 0 : 1;
}

int state_task_update (struct state *st, const struct state_task *t, struct err *e)
{
    if (begin_write (st, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_TASK_UPDATE);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)t->task_id);
    sqlite3_bind_int (s, 2, t->attempt);
    sqlite3_bind_text (s, 3, t->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (s, 4, t->shim_pid);
    sqlite3_bind_text (s, 5, t->cgroup, -1, SQLITE_STATIC);
    sqlite3_bind_text (s, 6, t->started_at, -1, SQLITE_STATIC);
    if (run_write (st, s, e, "update task") < 0)
        return -1;
    if (sqlite3_changes (st->db) == 0)
        return err_set (e, ENOENT, "state db: no task %llu attempt %d",
                        (unsigned long long)t->task_id, t->attempt);
    return 0;
}

int state_task_set_status (struct state *st, uint64_t task_id, int attempt, const char *status,
                           struct err *e)
{
    if (begin_write (st, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_TASK_SET_STATUS);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)task_id);
    sqlite3_bind_int (s, 2, attempt);
    sqlite3_bind_text (s, 3, status, -1, SQLITE_STATIC);
    if (run_write (st, s, e, "set task status") < 0)
        return -1;
    if (sqlite3_changes (st->db) == 0)
        return err_set (e, ENOENT, "state db: no task %llu attempt %d",
                        (unsigned long long)task_id, attempt);
    return 0;
}

static void copy_text (char *dst, size_t size, const unsigned char *src)
{
    snprintf (dst, size, "%s", src ? (const char *)src : "");
}

static void row_to_task (sqlite3_stmt *s, struct state_task *t)
{
    memset (t, 0, sizeof *t);
    t->task_id = (uint64_t)sqlite3_column_int64 (s, 0);
    t->attempt = sqlite3_column_int (s, 1);
    copy_text (t->status, sizeof t->status, sqlite3_column_text (s, 2));
    t->shim_pid = (pid_t)sqlite3_column_int64 (s, 3);
    copy_text (t->cgroup, sizeof t->cgroup, sqlite3_column_text (s, 4));
    const unsigned char *spec = sqlite3_column_text (s, 5);
    t->spec = spec ? xstrdup ((const char *)spec) : NULL;
    copy_text (t->started_at, sizeof t->started_at, sqlite3_column_text (s, 6));
}

int state_task_get (struct state *st, uint64_t task_id, int attempt, struct state_task *out,
                    struct err *e)
{
    sqlite3_stmt *s = stmt (st, Q_TASK_GET);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)task_id);
    sqlite3_bind_int (s, 2, attempt);
    int rc = sqlite3_step (s);
    if (rc == SQLITE_ROW) {
        row_to_task (s, out);
        sqlite3_reset (s);
        return 1;
    }
    sqlite3_reset (s);
    if (rc != SQLITE_DONE)
        return db_error (st, e, "get task");
    return 0;
}

int state_task_remove (struct state *st, uint64_t task_id, int attempt, struct err *e)
{
    if (begin_write (st, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_TASK_REMOVE);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)task_id);
    sqlite3_bind_int (s, 2, attempt);
    return run_write (st, s, e, "remove task");
}

int state_task_finish (struct state *st, uint64_t task_id, int attempt, struct err *e)
{
    if (state_task_remove (st, task_id, attempt, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_DONE_ADD);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)task_id);
    sqlite3_bind_int (s, 2, attempt);
    if (run_write (st, s, e, "remember finished task") < 0)
        return -1;
    if (++st->done_inserts % PRUNE_EVERY == 0) {
        s = stmt (st, Q_DONE_PRUNE);
        sqlite3_bind_int64 (s, 1, DONE_KEEP);
        if (run_write (st, s, e, "prune finished tasks") < 0)
            return -1;
    }
    return 0;
}

int state_task_known (struct state *st, uint64_t task_id, int attempt, struct err *e)
{
    sqlite3_stmt *s = stmt (st, Q_DONE_HAS);
    sqlite3_bind_int64 (s, 1, (sqlite3_int64)task_id);
    sqlite3_bind_int (s, 2, attempt);
    int rc = sqlite3_step (s);
    sqlite3_reset (s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc != SQLITE_DONE)
        return db_error (st, e, "look up task");
    return 0;
}

void state_task_clear (struct state_task *t)
{
    if (t)
        FREE_NULL (t->spec);
}

void state_task_list_free (struct state_task *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        state_task_clear (&v[i]);
    free (v);
}

int state_task_list (struct state *st, struct state_task **out, size_t *n, struct err *e)
{
    sqlite3_stmt *s = stmt (st, Q_TASK_LIST);
    struct state_task *v = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray (v, cap, sizeof *v);
        }
        row_to_task (s, &v[len++]);
    }
    sqlite3_reset (s);
    if (rc != SQLITE_DONE) {
        state_task_list_free (v, len);
        return db_error (st, e, "list tasks");
    }
    *out = v;
    *n = len;
    return 0;
}

int state_outbox_append (struct state *st, const char *body, int64_t *seq, struct err *e)
{
    if (begin_write (st, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_OUTBOX_APPEND);
    sqlite3_bind_text (s, 1, body, -1, SQLITE_STATIC);
    if (run_write (st, s, e, "append to outbox") < 0)
        return -1;
    if (seq)
        *seq = sqlite3_last_insert_rowid (st->db);
    return 0;
}

void state_outbox_free (struct state_outbox_entry *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free (v[i].body);
    free (v);
}

int state_outbox_peek (struct state *st, size_t max, struct state_outbox_entry **out, size_t *n,
                       struct err *e)
{
    sqlite3_stmt *s = stmt (st, Q_OUTBOX_PEEK);
    sqlite3_bind_int64 (s, 1, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    struct state_outbox_entry *v = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray (v, cap, sizeof *v);
        }
        const unsigned char *body = sqlite3_column_text (s, 1);
        v[len].seq = sqlite3_column_int64 (s, 0);
        v[len].body = xstrdup (body ? (const char *)body : "");
        len++;
    }
    sqlite3_reset (s);
    if (rc != SQLITE_DONE) {
        state_outbox_free (v, len);
        return db_error (st, e, "peek outbox");
    }
    *out = v;
    *n = len;
    return 0;
}

int state_outbox_delete_upto (struct state *st, int64_t seq, struct err *e)
{
    if (begin_write_mode (st, true, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_OUTBOX_DELETE);
    sqlite3_bind_int64 (s, 1, seq);
    return run_write (st, s, e, "delete from outbox");
}

int64_t state_outbox_count (struct state *st, struct err *e)
{
    sqlite3_stmt *s = stmt (st, Q_OUTBOX_COUNT);
    int64_t n = -1;
    if (sqlite3_step (s) == SQLITE_ROW)
        n = sqlite3_column_int64 (s, 0);
    else
        db_error (st, e, "count outbox");
    sqlite3_reset (s);
    return n;
}

int state_meta_get_int (struct state *st, const char *key, int64_t *out, struct err *e)
{
    sqlite3_stmt *s = stmt (st, Q_META_GET);
    sqlite3_bind_text (s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step (s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64 (s, 0);
        sqlite3_reset (s);
        return 1;
    }
    sqlite3_reset (s);
    if (rc != SQLITE_DONE)
        return db_error (st, e, "get meta");
    return 0;
}

int state_meta_set_int (struct state *st, const char *key, int64_t value, struct err *e)
{
    if (begin_write (st, e) < 0)
        return -1;
    sqlite3_stmt *s = stmt (st, Q_META_SET);
    sqlite3_bind_text (s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (s, 2, value);
    return run_write (st, s, e, "set meta");
}

static bool valid_node_id (const char *s)
{
    return strlen (s) == 32 && strspn (s, "0123456789abcdef") == 32;
}

/* Reads an existing node-id file. Returns 1 read, 0 absent, -1 error. */
static int read_node_id (const char *path, char *out, struct err *e)
{
    char buf[64];
    if (fileio_read_text (path, buf, sizeof buf) < 0) {
        if (errno == ENOENT)
            return 0;
        return err_set (e, errno, "read `%s`: %s", path, strerror (errno));
    }
    buf[strcspn (buf, "\r\n")] = '\0';
    if (!valid_node_id (buf))
        return err_set (e, EINVAL, "`%s` does not hold a node id (32 hex digits); remove it "
                        "to give this runner a new identity", path);
    memcpy (out, buf, 33);
    return 1;
}

int state_node_id (const char *dir, char *out, struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf (path, sizeof path, "%s/node-id", dir) >= (int)sizeof path
        || snprintf (tmp, sizeof tmp, "%s/node-id.%d.tmp", dir, (int)getpid ())
               >= (int)sizeof tmp)
        return err_set (e, ENAMETOOLONG, "state dir `%s`: path too long", dir);
    int rc = read_node_id (path, out, e);
    if (rc != 0)
        return rc < 0 ? -1 : 0;

    unsigned char raw[16];
    char hex[34];
    if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return err_set (e, errno, "getrandom: %s", strerror (errno));
    for (int i = 0; i < 16; i++)
        snprintf (hex + 2 * i, 3, "%02x", raw[i]);
    hex[32] = '\n';
    hex[33] = '\0';

    /* Write a temporary file, then link() it into place: link fails with EEXIST if another
     * process won the race, and the file is never seen half-written. */
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set (e, errno, "create `%s`: %s", tmp, strerror (errno));
    if (write (fd, hex, 33) != 33 || fsync (fd) < 0) {
        int saved = errno;
        close (fd);
        unlink (tmp);
        return err_set (e, saved, "write `%s`: %s", tmp, strerror (saved));
    }
    close (fd);
    rc = link (tmp, path);
    int saved = errno;
    unlink (tmp);
    if (rc < 0 && saved != EEXIST)
        return err_set (e, saved, "create `%s`: %s", path, strerror (saved));
    int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync (dfd);
        close (dfd);
    }
    rc = read_node_id (path, out, e);
    if (rc == 0)
        return err_set (e, ENOENT, "`%s` vanished after creation", path);
    return rc < 0 ? -1 : 0;
}
