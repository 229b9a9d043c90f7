/* store_sqlite.c - the host's durable store over SQLite (WAL, versioned schema, prepared statements) */
#include "host/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "common/xalloc.h"

/* ---- SQL ------------------------------------------------------------------------------ */

/* Connection settings. synchronous=FULL: a commit is on disk before the host replies
 * (store.h). cache_size=-8000 is 8 MB of page cache: the hot set is the active tasks and the
 * top of the indexes; the history is read by keyset pages. */
static const char SQL_PRAGMAS[] =
    "PRAGMA synchronous=FULL;"
    "PRAGMA foreign_keys=OFF;"
    "PRAGMA temp_store=MEMORY;"
    "PRAGMA cache_size=-8000;";
static const char SQL_JOURNAL_WAL[] = "PRAGMA journal_mode=WAL";
static const char SQL_USER_VERSION[] = "PRAGMA user_version";
static const int BUSY_TIMEOUT_MS = 5000;

/* Migration steps: MIGRATIONS[i] brings the schema from version i to i + 1. Append only;
 * never edit a step that has shipped. 0.3 table and column names are kept. */
static const char SQL_SCHEMA_V1[] =
    "CREATE TABLE node ("
    " hostname TEXT NOT NULL PRIMARY KEY,"
    " node_id TEXT,"
    " url TEXT,"
    " total_cores INTEGER NOT NULL DEFAULT 0,"
    " memory_total_bytes INTEGER,"
    " status TEXT NOT NULL DEFAULT 'offline',"
    " last_heartbeat INTEGER,"              /* ms since epoch */
    " numa_topology TEXT,"
    " gpu_info TEXT);"
    "CREATE TABLE task ("
    " task_id INTEGER PRIMARY KEY,"         /* the rowid: snowflakes are < 2^63 */
    " task_type TEXT NOT NULL DEFAULT 'command',"
    " batch_id INTEGER,"                    /* NULL = none */
    " command TEXT NOT NULL DEFAULT '',"
    " arguments TEXT NOT NULL DEFAULT '[]',"
    " env_vars TEXT NOT NULL DEFAULT '{}',"
    " required_cores INTEGER NOT NULL DEFAULT 1,"
    " required_gpus TEXT NOT NULL DEFAULT '[]',"
    " required_memory_bytes INTEGER,"       /* NULL = no limit */
    " status TEXT NOT NULL,"
    " assigned_node_id TEXT,"
    " target TEXT,"
    " target_numa_node_id INTEGER,"         /* NULL = none */
    " container_name TEXT,"
    " stdout_path TEXT,"
    " stderr_path TEXT,"
    " exit_code INTEGER,"                   /* NULL = no exit code */
    " error_message TEXT,"
    " submitted_at INTEGER NOT NULL,"       /* ms since epoch, as the other times */
    " started_at INTEGER,"
    " completed_at INTEGER,"
    " attempt INTEGER NOT NULL DEFAULT 1,"
    " retries_left INTEGER NOT NULL DEFAULT 0,"
    " assignment_suspicion_count INTEGER NOT NULL DEFAULT 0);"
    /* One index per listing filter, each ending in task_id so that an equality on the
     * first column yields rows already in id order: "newest first, LIMIT n" and the keyset
     * condition task_id < ? both stop after n rows instead of sorting. */
    "CREATE INDEX task_status_id ON task (status, task_id);"
    "CREATE INDEX task_node_id ON task (assigned_node_id, task_id);"
    "CREATE INDEX task_batch_id ON task (batch_id, task_id);"
    "CREATE INDEX task_type_id ON task (task_type, task_id);";

/* v2: Docker options of a task (--image, --mount, --privileged) as one JSON object. */
static const char SQL_SCHEMA_V2[] = "ALTER TABLE task ADD COLUMN docker_options TEXT;";

/* v3: the throttle of a batch (--max-running), on each of its tasks so that it comes back
 * with them at restart; NULL = none. */
static const char SQL_SCHEMA_V3[] = "ALTER TABLE task ADD COLUMN max_running INTEGER;";

/* v4: the published SSH port of a VPS task, as its runner last reported it; NULL = none. */
static const char SQL_SCHEMA_V4[] = "ALTER TABLE task ADD COLUMN ssh_port INTEGER;";

static const char *const MIGRATIONS[] = {
    SQL_SCHEMA_V1,
    SQL_SCHEMA_V2,
    SQL_SCHEMA_V3,
    SQL_SCHEMA_V4,
};
#define SCHEMA_VERSION ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* Task columns, in the order of enum task_col; ?N in the insert and update is column N-1. */
#define TASK_COLUMNS                                                                        \
    "task_id, task_type, batch_id, command, arguments, env_vars, required_cores,"           \
    " required_gpus, required_memory_bytes, status, assigned_node_id, target,"              \
    " target_numa_node_id, container_name, stdout_path, stderr_path, exit_code,"            \
    " error_message, submitted_at, started_at, completed_at, attempt, retries_left,"        \
    " assignment_suspicion_count, docker_options, max_running, ssh_port"

enum task_col {
    COL_ID, COL_TYPE, COL_BATCH, COL_COMMAND, COL_ARGS, COL_ENV, COL_CORES, COL_GPUS,
    COL_MEMORY, COL_STATUS, COL_NODE, COL_TARGET, COL_NUMA, COL_CONTAINER, COL_STDOUT,
    COL_STDERR, COL_EXIT, COL_ERROR, COL_SUBMITTED, COL_STARTED, COL_COMPLETED, COL_ATTEMPT,
    COL_RETRIES, COL_SUSPICION, COL_DOCKER, COL_MAX_RUNNING, COL_SSH_PORT,
    COL_COUNT
};

static const char SQL_TASK_INSERT[] =
    "INSERT INTO task (" TASK_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";
/* Every column but the key: writing the immutable ones too costs nothing and keeps one
 * binding function for insert and update. */
static const char SQL_TASK_UPDATE[] =
    "UPDATE task SET task_type = ?2, batch_id = ?3, command = ?4, arguments = ?5,"
    " env_vars = ?6, required_cores = ?7, required_gpus = ?8, required_memory_bytes = ?9,"
    " status = ?10, assigned_node_id = ?11, target = ?12, target_numa_node_id = ?13,"
    " container_name = ?14, stdout_path = ?15, stderr_path = ?16, exit_code = ?17,"
    " error_message = ?18, submitted_at = ?19, started_at = ?20, completed_at = ?21,"
    " attempt = ?22, retries_left = ?23, assignment_suspicion_count = ?24,"
    " docker_options = ?25, max_running = ?26, ssh_port = ?27"
    " WHERE task_id = ?1";
static const char SQL_TASK_GET[] = "SELECT " TASK_COLUMNS " FROM task WHERE task_id = ?1";
static const char SQL_TASK_MAX_ID[] = "SELECT max(task_id) FROM task";
/* Two arms so that each uses the (status, task_id) index; the OR form scans the table. */
static const char SQL_TASK_LOAD_ACTIVE[] =
    "SELECT " TASK_COLUMNS " FROM task"
    " WHERE status IN ('queued', 'assigning', 'pending', 'running', 'paused')"
    " UNION ALL SELECT " TASK_COLUMNS " FROM task"
    " WHERE status = 'lost' AND completed_at >= ?1"
    " ORDER BY 1";
static const char SQL_NODE_UPSERT[] =
    "INSERT INTO node (hostname, node_id, url, total_cores, memory_total_bytes, status,"
    " last_heartbeat, numa_topology, gpu_info) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (hostname) DO UPDATE SET node_id = excluded.node_id, url = excluded.url,"
    " total_cores = excluded.total_cores, memory_total_bytes = excluded.memory_total_bytes,"
    " status = excluded.status, last_heartbeat = excluded.last_heartbeat,"
    " numa_topology = excluded.numa_topology, gpu_info = excluded.gpu_info";
static const char SQL_NODE_LOAD_ALL[] =
    "SELECT hostname, node_id, url, total_cores, memory_total_bytes, status, last_heartbeat,"
    " numa_topology, gpu_info FROM node ORDER BY hostname";
static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

/* ---- the store ------------------------------------------------------------------------ */

enum stmt_id {
    ST_TASK_INSERT, ST_TASK_UPDATE, ST_TASK_GET, ST_TASK_MAX_ID, ST_TASK_LOAD_ACTIVE,
    ST_NODE_UPSERT, ST_NODE_LOAD_ALL, ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_TASK_INSERT] = SQL_TASK_INSERT,     [ST_TASK_UPDATE] = SQL_TASK_UPDATE,
    [ST_TASK_GET] = SQL_TASK_GET,           [ST_TASK_MAX_ID] = SQL_TASK_MAX_ID,
    [ST_TASK_LOAD_ACTIVE] = SQL_TASK_LOAD_ACTIVE,
    [ST_NODE_UPSERT] = SQL_NODE_UPSERT,     [ST_NODE_LOAD_ALL] = SQL_NODE_LOAD_ALL,
    [ST_BEGIN] = SQL_BEGIN,                 [ST_COMMIT] = SQL_COMMIT,
    [ST_ROLLBACK] = SQL_ROLLBACK,
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    bool in_txn;   /* store_begin succeeded and neither commit nor rollback followed */
};

/* The errno-like code for a SQLite result code (flux set_errno_from_sqlite_error). */
static int sqlite_errno (int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return EBUSY;
    case SQLITE_CONSTRAINT:
        return EEXIST;
    case SQLITE_NOMEM:
        return ENOMEM;
    case SQLITE_FULL:
        return ENOSPC;
    case SQLITE_READONLY:
        return EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return EPERM;
    case SQLITE_CANTOPEN:
        return ENOENT;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return EBADMSG;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        return EINVAL;
    default:
        return EIO;
    }
}

/* Sets E from the connection's last error: "sqlite: WHAT: <errmsg>". Returns -1. */
static int db_err (sqlite3 *db, int rc, struct err *e, const char *what)
{
    return err_set (e, sqlite_errno (rc), "sqlite: %s: %s", what,
                    db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
}

static int64_t now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs SQL (one or more statements, no results wanted). Returns 0 or -1. */
static int exec_sql (sqlite3 *db, const char *sql, struct err *e, const char *what)
{
    int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_err (db, rc, e, what);
    return 0;
}

/* Reads PRAGMA user_version into *out. Returns 0 or -1. */
static int read_user_version (sqlite3 *db, int *out, struct err *e)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2 (db, SQL_USER_VERSION, -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step (s)) == SQLITE_ROW) {
        *out = sqlite3_column_int (s, 0);
        sqlite3_finalize (s);
        return 0;
    }
    db_err (db, rc, e, "read user_version");
    sqlite3_finalize (s);
    return -1;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. Returns 0 or -1. */
static int migrate (sqlite3 *db, const char *path, struct err *e)
{
    char *set = NULL;
    int version;
    if (read_user_version (db, &version, e) < 0)
        return -1;
    if (version == SCHEMA_VERSION)
        return 0;
    if (exec_sql (db, SQL_BEGIN, e, "begin migration") < 0)
        return -1;
    /* store_open refused a newer schema; another process may have migrated since */
    if (read_user_version (db, &version, e) < 0)
        goto error;
    if (version > SCHEMA_VERSION) {
        err_set (e, ENOTSUP, "sqlite: `%s`: schema version %d is newer than this program"
                 " supports (%d)", path, version, SCHEMA_VERSION);
        goto error;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char what[64];
        snprintf (what, sizeof what, "migrate schema to version %d", v + 1);
        if (exec_sql (db, MIGRATIONS[v], e, what) < 0)
            goto error;
    }
    set = xasprintf ("PRAGMA user_version=%d", SCHEMA_VERSION);
    if (exec_sql (db, set, e, "set user_version") < 0
        || exec_sql (db, SQL_COMMIT, e, "commit migration") < 0)
        goto error;
    free (set);
    return 0;
error:
    free (set);
    sqlite3_exec (db, SQL_ROLLBACK, NULL, NULL, NULL);
    return -1;
}

/* Fails with a clear message when the directory that would hold PATH does not exist. */
static int check_parent_dir (const char *path, struct err *e)
{
    if (strcmp (path, ":memory:") == 0)
        return 0;
    const char *slash = strrchr (path, '/');
    if (!slash)
        return 0; /* the working directory */
    char *dir = slash == path ? xstrdup ("/") : xstrndup (path, (size_t)(slash - path));
    struct stat sb;
    int rc = 0;
    if (stat (dir, &sb) < 0)
        rc = err_set (e, errno, "sqlite: open `%s`: directory `%s`: %s", path, dir,
                      strerror (errno));
    else if (!S_ISDIR (sb.st_mode))
        rc = err_set (e, ENOTDIR, "sqlite: open `%s`: `%s` is not a directory", path, dir);
    free (dir);
    return rc;
}

struct store *store_open (const char *path, struct err *e)
{
    struct store *st = NULL;
    sqlite3 *db = NULL;
    char what[300];
    if (!path || !*path) {
        err_set (e, EINVAL, "sqlite: open: empty database path");
        return NULL;
    }
    if (check_parent_dir (path, e) < 0)
        return NULL;
    snprintf (what, sizeof what, "open `%s`", path);
    int rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        db_err (db, rc, e, what);
        goto error;
    }
    sqlite3_extended_result_codes (db, 1);
    sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);

    /* refuse a newer schema before changing anything in the file (journal_mode persists) */
    int version;
    if (read_user_version (db, &version, e) < 0)
        goto error;
    if (version > SCHEMA_VERSION) {
        err_set (e, ENOTSUP, "sqlite: `%s`: schema version %d is newer than this program"
                 " supports (%d); use a newer hakuriver", path, version, SCHEMA_VERSION);
        goto error;
    }

    /* journal_mode answers with the mode in force: a file that cannot do WAL says so */
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2 (db, SQL_JOURNAL_WAL, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step (s);
    if (rc != SQLITE_ROW) {
        snprintf (what, sizeof what, "`%s`: set journal_mode=WAL", path);
        db_err (db, rc, e, what);
        sqlite3_finalize (s);
        goto error;
    }
    const char *mode = (const char *)sqlite3_column_text (s, 0);
    if (!mode || (strcasecmp (mode, "wal") != 0 && strcmp (path, ":memory:") != 0)) {
        err_set (e, ENOTSUP, "sqlite: `%s`: journal_mode is `%s`, not wal", path,
                 mode ? mode : "?");
        sqlite3_finalize (s);
        goto error;
    }
    sqlite3_finalize (s);
    snprintf (what, sizeof what, "`%s`: pragmas", path);
    if (exec_sql (db, SQL_PRAGMAS, e, what) < 0 || migrate (db, path, e) < 0)
        goto error;

    st = xcalloc (1, sizeof *st);
    st->db = db;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3 (db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                                 NULL);
        if (rc != SQLITE_OK) {
            snprintf (what, sizeof what, "prepare statement %d", i);
            db_err (db, rc, e, what);
            goto error;
        }
    }
    return st;
error:
    if (st)
        store_close (st);
    else
        sqlite3_close_v2 (db);
    return NULL;
}

void store_close (struct store *st)
{
    if (!st)
        return;
    int saved = errno;
    if (st->in_txn && sqlite3_get_autocommit (st->db) == 0)
        sqlite3_exec (st->db, SQL_ROLLBACK, NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize (st->stmt[i]);
    sqlite3_close_v2 (st->db);
    free (st);
    errno = saved;
}

int store_schema_version (struct store *st)
{
    int version;
    if (!st || read_user_version (st->db, &version, NULL) < 0)
        return -1;
    return version;
}

/* ---- transactions --------------------------------------------------------------------- */

/* Steps a statement that returns no rows and resets it. Returns 0 or -1. */
static int step_done (struct store *st, sqlite3_stmt *s, struct err *e, const char *what)
{
    int rc = sqlite3_step (s);
    if (rc != SQLITE_DONE) {
        db_err (st->db, rc, e, what);
        sqlite3_reset (s);
        sqlite3_clear_bindings (s);
        return -1;
    }
    sqlite3_reset (s);
    sqlite3_clear_bindings (s);
    return 0;
}

int store_begin (struct store *st, struct err *e)
{
    if (st->in_txn)
        return 0;
    if (step_done (st, st->stmt[ST_BEGIN], e, "begin") < 0)
        return -1;
    st->in_txn = true;
    return 0;
}

/* After some errors (SQLITE_FULL, IOERR, BUSY on COMMIT) SQLite rolls the transaction back
 * by itself. Writes that followed would then autocommit one by one, so they are refused and
 * the commit reports the loss. Returns -1 with E set when that happened, else 0. */
static int txn_lost (struct store *st, struct err *e)
{
    if (st->in_txn && sqlite3_get_autocommit (st->db))
        return err_set (e, EIO, "sqlite: the open transaction was rolled back after an error");
    return 0;
}

int store_commit (struct store *st, struct err *e)
{
    if (!st->in_txn)
        return 0;
    if (txn_lost (st, e) < 0) {
        st->in_txn = false;
        return -1;
    }
    if (step_done (st, st->stmt[ST_COMMIT], e, "commit") < 0) {
        /* a failed COMMIT may leave the transaction open (SQLITE_BUSY): end it */
        store_rollback (st);
        return -1;
    }
    st->in_txn = false;
    return 0;
}

void store_rollback (struct store *st)
{
    if (!st || !st->in_txn)
        return;
    /* SQLite may already have rolled back on its own (e.g. after SQLITE_FULL) */
    if (sqlite3_get_autocommit (st->db) == 0)
        step_done (st, st->stmt[ST_ROLLBACK], NULL, "rollback");
    st->in_txn = false;
}

/* ---- tasks ---------------------------------------------------------------------------- */

/* Parameter indexes are 1-based: ?N. */
static int bind_text_or_null (sqlite3_stmt *s, int param, const char *v)
{
    return v ? sqlite3_bind_text (s, param, v, -1, SQLITE_STATIC) : sqlite3_bind_null (s, param);
}

static int bind_int64_or_null (sqlite3_stmt *s, int param, int64_t v, bool is_null)
{
    return is_null ? sqlite3_bind_null (s, param) : sqlite3_bind_int64 (s, param, v);
}

/* Binds every column of T as ?1..?26. Returns 0 or -1. */
static int bind_task (struct store *st, sqlite3_stmt *s, const struct task *t, struct err *e)
{
    const char *status = task_status_name (t->status);
    if (t->id == 0 || t->id > INT64_MAX)
        return err_set (e, EINVAL, "sqlite: task %" PRIu64 ": id out of range", t->id);
    if (t->batch_id > INT64_MAX)
        return err_set (e, EINVAL, "sqlite: task %" PRIu64 ": batch id out of range", t->id);
    if (!status)
        return err_set (e, EINVAL, "sqlite: task %" PRIu64 ": bad status %d", t->id,
                        (int)t->status);
    int rc = SQLITE_OK;
    rc |= sqlite3_bind_int64 (s, COL_ID + 1, (int64_t)t->id);
    rc |= bind_text_or_null (s, COL_TYPE + 1, t->task_type[0] ? t->task_type : "command");
    rc |= bind_int64_or_null (s, COL_BATCH + 1, (int64_t)t->batch_id, t->batch_id == 0);
    rc |= bind_text_or_null (s, COL_COMMAND + 1, t->command ? t->command : "");
    rc |= bind_text_or_null (s, COL_ARGS + 1, t->arguments_json ? t->arguments_json : "[]");
    rc |= bind_text_or_null (s, COL_ENV + 1, t->env_json ? t->env_json : "{}");
    rc |= sqlite3_bind_int (s, COL_CORES + 1, t->cores);
    rc |= bind_text_or_null (s, COL_GPUS + 1, t->gpus_json ? t->gpus_json : "[]");
    rc |= bind_int64_or_null (s, COL_MEMORY + 1, t->memory_bytes, t->memory_bytes == 0);
    rc |= bind_text_or_null (s, COL_STATUS + 1, status);
    rc |= bind_text_or_null (s, COL_NODE + 1, t->node);
    rc |= bind_text_or_null (s, COL_TARGET + 1, t->target);
    rc |= bind_int64_or_null (s, COL_NUMA + 1, t->numa, t->numa < 0);
    rc |= bind_text_or_null (s, COL_CONTAINER + 1, t->container);
    rc |= bind_text_or_null (s, COL_STDOUT + 1, t->stdout_path);
    rc |= bind_text_or_null (s, COL_STDERR + 1, t->stderr_path);
    rc |= bind_int64_or_null (s, COL_EXIT + 1, t->exit_code, !t->has_exit_code);
    rc |= bind_text_or_null (s, COL_ERROR + 1, t->error_message);
    rc |= sqlite3_bind_int64 (s, COL_SUBMITTED + 1, t->submitted_at);
    rc |= bind_int64_or_null (s, COL_STARTED + 1, t->started_at, t->started_at == 0);
    rc |= bind_int64_or_null (s, COL_COMPLETED + 1, t->completed_at, t->completed_at == 0);
    rc |= sqlite3_bind_int (s, COL_ATTEMPT + 1, t->attempt);
    rc |= sqlite3_bind_int (s, COL_RETRIES + 1, t->retries_left);
    rc |= sqlite3_bind_int (s, COL_SUSPICION + 1, t->suspicion);
    rc |= bind_text_or_null (s, COL_DOCKER + 1, t->docker_json);
    rc |= bind_int64_or_null (s, COL_MAX_RUNNING + 1, t->max_running, t->max_running <= 0);
    rc |= bind_int64_or_null (s, COL_SSH_PORT + 1, t->ssh_port, t->ssh_port <= 0);
    if (rc != SQLITE_OK) {
        db_err (st->db, rc, e, "bind task");
        sqlite3_clear_bindings (s);
        return -1;
    }
    return 0;
}

static char *column_str (sqlite3_stmt *s, int col, const char *dflt)
{
    const char *v = (const char *)sqlite3_column_text (s, col);
    if (!v)
        v = dflt;
    return v ? xstrdup (v) : NULL;
}

static bool column_null (sqlite3_stmt *s, int col)
{
    return sqlite3_column_type (s, col) == SQLITE_NULL;
}

/* Builds a task from the current row of S (columns in TASK_COLUMNS order). Returns it, or
 * NULL with E set when the row holds a value the struct cannot carry. */
static struct task *task_from_row (sqlite3_stmt *s, struct err *e)
{
    int64_t id = sqlite3_column_int64 (s, COL_ID);
    const char *type = (const char *)sqlite3_column_text (s, COL_TYPE);
    const char *status = (const char *)sqlite3_column_text (s, COL_STATUS);
    struct task *t = task_create ();
    t->id = (uint64_t)id;
    if (type && strlen (type) >= sizeof t->task_type) {
        err_set (e, EBADMSG, "sqlite: task %" PRId64 ": bad task_type `%s`", id, type);
        goto error;
    }
    strcpy (t->task_type, type ? type : "command");
    if (!status || task_status_parse (status, &t->status) < 0) {
        err_set (e, EBADMSG, "sqlite: task %" PRId64 ": bad status `%s`", id,
                 status ? status : "NULL");
        goto error;
    }
    t->batch_id = column_null (s, COL_BATCH) ? 0 : (uint64_t)sqlite3_column_int64 (s, COL_BATCH);
    t->command = column_str (s, COL_COMMAND, "");
    task_set_str (&t->arguments_json, NULL);
    t->arguments_json = column_str (s, COL_ARGS, "[]");
    task_set_str (&t->env_json, NULL);
    t->env_json = column_str (s, COL_ENV, "{}");
    t->cores = sqlite3_column_int (s, COL_CORES);
    task_set_str (&t->gpus_json, NULL);
    t->gpus_json = column_str (s, COL_GPUS, "[]");
    t->memory_bytes = sqlite3_column_int64 (s, COL_MEMORY); /* NULL reads as 0 */
    t->node = column_str (s, COL_NODE, NULL);
    t->target = column_str (s, COL_TARGET, NULL);
    t->numa = column_null (s, COL_NUMA) ? -1 : sqlite3_column_int (s, COL_NUMA);
    t->container = column_str (s, COL_CONTAINER, NULL);
    t->stdout_path = column_str (s, COL_STDOUT, NULL);
    t->stderr_path = column_str (s, COL_STDERR, NULL);
    t->has_exit_code = !column_null (s, COL_EXIT);
    t->exit_code = sqlite3_column_int (s, COL_EXIT);
    t->error_message = column_str (s, COL_ERROR, NULL);
    t->submitted_at = sqlite3_column_int64 (s, COL_SUBMITTED);
    t->started_at = sqlite3_column_int64 (s, COL_STARTED);
    t->completed_at = sqlite3_column_int64 (s, COL_COMPLETED);
    t->attempt = sqlite3_column_int (s, COL_ATTEMPT);
    t->retries_left = sqlite3_column_int (s, COL_RETRIES);
    t->suspicion = sqlite3_column_int (s, COL_SUSPICION);
    t->docker_json = column_str (s, COL_DOCKER, NULL);
    t->max_running = sqlite3_column_int (s, COL_MAX_RUNNING); /* NULL reads as 0 */
    t->ssh_port = sqlite3_column_int (s, COL_SSH_PORT);       /* NULL reads as 0 */
    return t;
error:
    task_destroy (t);
    return NULL;
}

int store_task_insert (struct store *st, const struct task *task, struct err *e)
{
    sqlite3_stmt *s = st->stmt[ST_TASK_INSERT];
    char what[64];
    if (txn_lost (st, e) < 0)
        return -1;
    if (bind_task (st, s, task, e) < 0)
        return -1;
    snprintf (what, sizeof what, "insert task %" PRIu64, task->id);
    return step_done (st, s, e, what);
}

int store_task_update (struct store *st, const struct task *task, struct err *e)
{
    sqlite3_stmt *s = st->stmt[ST_TASK_UPDATE];
    char what[64];
    if (txn_lost (st, e) < 0)
        return -1;
    if (bind_task (st, s, task, e) < 0)
        return -1;
    snprintf (what, sizeof what, "update task %" PRIu64, task->id);
    if (step_done (st, s, e, what) < 0)
        return -1;
    if (sqlite3_changes (st->db) == 0)
        return err_set (e, ENOENT, "sqlite: update task %" PRIu64 ": no such task", task->id);
    return 0;
}

int store_task_get (struct store *st, uint64_t id, struct task **out, struct err *e)
{
    sqlite3_stmt *s = st->stmt[ST_TASK_GET];
    struct task *t = NULL;
    int ret = 0;
    *out = NULL;
    if (id == 0 || id > INT64_MAX)
        return 0; /* no row can have it */
    sqlite3_bind_int64 (s, 1, (int64_t)id);
    int rc = sqlite3_step (s);
    if (rc == SQLITE_ROW) {
        if (!(t = task_from_row (s, e)))
            ret = -1;
    } else if (rc != SQLITE_DONE) {
        char what[64];
        snprintf (what, sizeof what, "get task %" PRIu64, id);
        ret = db_err (st->db, rc, e, what);
    }
    sqlite3_reset (s);
    sqlite3_clear_bindings (s);
    *out = t;
    return ret;
}

uint64_t store_task_max_id (struct store *st)
{
    sqlite3_stmt *s = st->stmt[ST_TASK_MAX_ID];
    uint64_t id = 0;
    if (sqlite3_step (s) == SQLITE_ROW && !column_null (s, 0))
        id = (uint64_t)sqlite3_column_int64 (s, 0);
    sqlite3_reset (s);
    return id;
}

/* A growing array of tasks read from a statement. */
struct task_vec {
    struct task **v;
    int n, cap;
};

static void task_vec_push (struct task_vec *tv, struct task *t)
{
    if (tv->n == tv->cap) {
        tv->cap = tv->cap ? tv->cap * 2 : 16;
        tv->v = xreallocarray (tv->v, (size_t)tv->cap, sizeof *tv->v);
    }
    tv->v[tv->n++] = t;
}

static void task_vec_free (struct task_vec *tv, int from)
{
    for (int i = from; i < tv->n; i++)
        task_destroy (tv->v[i]);
    free (tv->v);
    tv->v = NULL;
    tv->n = tv->cap = 0;
}

/* Steps S to the end, appending each row as a task. Resets S. Returns 0 or -1. */
static int read_tasks (struct store *st, sqlite3_stmt *s, struct task_vec *tv, struct err *e,
                       const char *what)
{
    int rc, ret = 0;
    while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
        struct task *t = task_from_row (s, e);
        if (!t) {
            ret = -1;
            break;
        }
        task_vec_push (tv, t);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = db_err (st->db, rc, e, what);
    sqlite3_reset (s);
    sqlite3_clear_bindings (s);
    return ret;
}

int store_task_load_active (struct store *st, int64_t lost_window_ms,
                            int (*cb) (struct task *task, void *arg), void *arg,
                            struct err *e)
{
    sqlite3_stmt *s = st->stmt[ST_TASK_LOAD_ACTIVE];
    struct task_vec tv = { 0 };
    sqlite3_bind_int64 (s, 1, now_ms () - (lost_window_ms > 0 ? lost_window_ms : 0));
    /* read everything first: the callback may write to the store, which must not happen
     * while a SELECT over the same table is still stepping */
    if (read_tasks (st, s, &tv, e, "load active tasks") < 0) {
        task_vec_free (&tv, 0);
        return -1;
    }
    for (int i = 0; i < tv.n; i++) {
        uint64_t id = tv.v[i]->id;
        if (cb (tv.v[i], arg) < 0) {
            task_vec_free (&tv, i + 1);
            return err_set (e, ECANCELED,
                            "sqlite: load active tasks: callback failed at task %" PRIu64, id);
        }
    }
    free (tv.v);
    return 0;
}

/* ---- task listing --------------------------------------------------------------------- */

#define LIST_MAX_BINDS (TASK_STATUS_COUNT + 6) /* statuses, node, type, batch, before, limit, offset */

/* A statement under construction: SQL text and the values bound to its ?s, in order. */
struct list_query {
    char *sql;
    size_t len, cap;
    int nbind;
    struct {
        const char *text;   /* NULL: an integer */
        int64_t i64;
    } bind[LIST_MAX_BINDS];
};

static void q_add (struct list_query *q, const char *s)
{
    size_t n = strlen (s);
    if (q->len + n + 1 > q->cap) {
        q->cap = (q->len + n + 1) * 2;
        q->sql = xrealloc (q->sql, q->cap);
    }
    memcpy (q->sql + q->len, s, n + 1);
    q->len += n;
}

static void q_text (struct list_query *q, const char *v)
{
    q->bind[q->nbind].text = v;
    q->bind[q->nbind++].i64 = 0;
}

static void q_int (struct list_query *q, int64_t v)
{
    q->bind[q->nbind].text = NULL;
    q->bind[q->nbind++].i64 = v;
}

/* Which column's index drives the query. The others are written as +col so that SQLite
 * cannot pick their index: without statistics it may otherwise choose task_type (two
 * values) over status and walk every command task to find three running ones. The order
 * is by expected selectivity: a batch is a few rows, a status list usually a few thousand
 * (the history ones are served newest first, stopping at LIMIT), a node many. */
enum list_driver { DRIVE_NONE, DRIVE_BATCH, DRIVE_STATUS, DRIVE_NODE, DRIVE_TYPE };

/* Appends " WHERE ..." for FILTER, with the NSTATUS names in STATUS as "= ?" or "IN (...)";
 * every value is a bound parameter. */
static void q_where (struct list_query *q, const struct task_filter *f, enum list_driver drv,
                     const char *const *status, int nstatus)
{
    const char *sep = " WHERE ";
    if (nstatus > 0) {
        q_add (q, sep);
        q_add (q, drv == DRIVE_STATUS ? "status" : "+status");
        if (nstatus == 1)
            q_add (q, " = ?");
        else {
            q_add (q, " IN (");
            for (int i = 0; i < nstatus; i++)
                q_add (q, i ? ", ?" : "?");
            q_add (q, ")");
        }
        for (int i = 0; i < nstatus; i++)
            q_text (q, status[i]);
        sep = " AND ";
    }
    if (f->node) {
        q_add (q, sep);
        q_add (q, drv == DRIVE_NODE ? "assigned_node_id = ?" : "+assigned_node_id = ?");
        q_text (q, f->node);
        sep = " AND ";
    }
    if (f->task_type) {
        q_add (q, sep);
        q_add (q, drv == DRIVE_TYPE ? "task_type = ?" : "+task_type = ?");
        q_text (q, f->task_type);
        sep = " AND ";
    }
    if (f->batch_id) {
        q_add (q, sep);
        q_add (q, "batch_id = ?");
        q_int (q, (int64_t)f->batch_id);
        sep = " AND ";
    }
    /* ids above INT64_MAX do not exist, so a larger bound excludes nothing */
    if (f->before_id && f->before_id <= INT64_MAX) {
        q_add (q, sep);
        q_add (q, "task_id < ?");
        q_int (q, (int64_t)f->before_id);
    }
}

/* Splits the comma-separated status list into canonical names, without repeats. Returns
 * the count (0 when LIST is NULL) or -1 with E set for an unknown or empty list. */
static int parse_status_list (const char *list, const char *names[TASK_STATUS_COUNT],
                              struct err *e)
{
    bool seen[TASK_STATUS_COUNT] = { false };
    int n = 0;
    if (!list)
        return 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn (p, ",");
        if (len > 0) {
            char name[32];
            enum task_status s;
            if (len >= sizeof name)
                return err_set (e, EINVAL, "sqlite: list tasks: unknown status `%.*s`",
                                (int)(len > 64 ? 64 : len), p);
            memcpy (name, p, len);
            name[len] = '\0';
            if (task_status_parse (name, &s) < 0)
                return err_set (e, EINVAL, "sqlite: list tasks: unknown status `%s`", name);
            if (!seen[s]) {
                seen[s] = true;
                names[n++] = task_status_name (s);
            }
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (n == 0)
        return err_set (e, EINVAL, "sqlite: list tasks: empty status list `%s`", list);
    return n;
}

int store_task_list (struct store *st, const struct task_filter *filter,
                     struct task ***out, int *n, struct err *e)
{
    const char *status[TASK_STATUS_COUNT];
    struct list_query q = { 0 };
    struct task_vec tv = { 0 };
    sqlite3_stmt *s = NULL;
    int ret = -1;
    *out = NULL;
    *n = 0;
    if (filter->limit <= 0)
        return err_set (e, EINVAL, "sqlite: list tasks: limit must be positive");
    if (filter->offset < 0)
        return err_set (e, EINVAL, "sqlite: list tasks: negative offset");
    int nstatus = parse_status_list (filter->status, status, e);
    if (nstatus < 0)
        return -1;
    int64_t offset = filter->before_id ? 0 : filter->offset;

    enum list_driver drv = filter->batch_id ? DRIVE_BATCH
                           : nstatus > 0    ? DRIVE_STATUS
                           : filter->node   ? DRIVE_NODE
                           : filter->task_type ? DRIVE_TYPE
                                            : DRIVE_NONE;
    /* A status list is an IN on the first column of (status, task_id): SQLite walks each
     * status newest first into a LIMIT + OFFSET sorter and leaves a status as soon as its
     * rows can no longer beat the sorter's worst (EXPLAIN: IdxLE on the sorter), so
     * "completed,failed" reads about LIMIT rows per status, not all of history. */
    q_add (&q, "SELECT " TASK_COLUMNS " FROM task");
    q_where (&q, filter, drv, status, nstatus);
    q_add (&q, " ORDER BY task_id DESC LIMIT ? OFFSET ?");
    q_int (&q, filter->limit);
    q_int (&q, offset);

    int rc = sqlite3_prepare_v2 (st->db, q.sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        db_err (st->db, rc, e, "list tasks: prepare");
        goto out;
    }
    for (int i = 0; i < q.nbind && rc == SQLITE_OK; i++)
        rc = q.bind[i].text ? sqlite3_bind_text (s, i + 1, q.bind[i].text, -1, SQLITE_STATIC)
                            : sqlite3_bind_int64 (s, i + 1, q.bind[i].i64);
    if (rc != SQLITE_OK) {
        db_err (st->db, rc, e, "list tasks: bind");
        goto out;
    }
    if (read_tasks (st, s, &tv, e, "list tasks") < 0) {
        task_vec_free (&tv, 0);
        goto out;
    }
    *out = tv.v;
    *n = tv.n;
    ret = 0;
out:
    sqlite3_finalize (s);
    free (q.sql);
    return ret;
}

/* ---- nodes ---------------------------------------------------------------------------- */

int store_node_upsert (struct store *st, const struct node_row *node, struct err *e)
{
    sqlite3_stmt *s = st->stmt[ST_NODE_UPSERT];
    char what[300];
    if (!node->hostname || !*node->hostname)
        return err_set (e, EINVAL, "sqlite: upsert node: empty hostname");
    if (txn_lost (st, e) < 0)
        return -1;
    int rc = SQLITE_OK;
    rc |= sqlite3_bind_text (s, 1, node->hostname, -1, SQLITE_STATIC);
    rc |= bind_text_or_null (s, 2, node->node_id);
    rc |= bind_text_or_null (s, 3, node->url);
    rc |= sqlite3_bind_int (s, 4, node->total_cores);
    rc |= sqlite3_bind_int64 (s, 5, node->memory_total_bytes);
    rc |= bind_text_or_null (s, 6, node->status ? node->status : "offline");
    rc |= sqlite3_bind_int64 (s, 7, node->last_heartbeat);
    rc |= bind_text_or_null (s, 8, node->numa_json);
    rc |= bind_text_or_null (s, 9, node->gpu_json);
    if (rc != SQLITE_OK) {
        sqlite3_clear_bindings (s);
        return db_err (st->db, rc, e, "upsert node: bind");
    }
    snprintf (what, sizeof what, "upsert node `%s`", node->hostname);
    return step_done (st, s, e, what);
}

int store_node_load_all (struct store *st, int (*cb) (struct node_row *node, void *arg),
                         void *arg, struct err *e)
{
    sqlite3_stmt *s = st->stmt[ST_NODE_LOAD_ALL];
    struct node_row **rows = NULL;
    int n = 0, cap = 0, rc, ret = 0;
    while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
        struct node_row *r = xcalloc (1, sizeof *r);
        r->hostname = column_str (s, 0, "");
        r->node_id = column_str (s, 1, NULL);
        r->url = column_str (s, 2, NULL);
        r->total_cores = sqlite3_column_int (s, 3);
        r->memory_total_bytes = sqlite3_column_int64 (s, 4);
        r->status = column_str (s, 5, NULL);
        r->last_heartbeat = sqlite3_column_int64 (s, 6);
        r->numa_json = column_str (s, 7, NULL);
        r->gpu_json = column_str (s, 8, NULL);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = xreallocarray (rows, (size_t)cap, sizeof *rows);
        }
        rows[n++] = r;
    }
    if (rc != SQLITE_DONE)
        ret = db_err (st->db, rc, e, "load nodes");
    sqlite3_reset (s);
    /* callbacks run after the statement is reset, as in store_task_load_active */
    int i = 0;
    for (; ret == 0 && i < n; i++) {
        char host[256];
        snprintf (host, sizeof host, "%s", rows[i]->hostname);
        if (cb (rows[i], arg) < 0)
            ret = err_set (e, ECANCELED, "sqlite: load nodes: callback failed at `%s`", host);
    }
    for (; i < n; i++)
        node_row_free (rows[i]);
    free (rows);
    return ret;
}

void node_row_free (struct node_row *node)
{
    if (!node)
        return;
    int saved = errno;
    free (node->hostname);
    free (node->node_id);
    free (node->url);
    free (node->status);
    free (node->numa_json);
    free (node->gpu_json);
    free (node);
    errno = saved;
}
