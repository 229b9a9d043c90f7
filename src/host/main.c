/* main.c - hakuriver.host: argv -> config -> store -> restore -> HTTP -> loop -> teardown.
 *
 * One thread. Each loop iteration: epoll_wait, run libmicrohttpd (handlers change state and
 * write to the open store transaction), then the before-sleep steps in this order: a
 * scheduling pass, COMMIT, release the replies held for the commit, answer long-polls whose
 * nodes got commands. A client therefore never sees a state change that is not on disk, and
 * all the changes of one iteration share one fsync (group commit). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "common/xalloc.h"
#include "entry.h"
#include "host/api.h"
#include "host/docker_worker.h"
#include "host/ssh_proxy.h"
#include "host/vps.h"
#include "host/host.h"
#include "host/http.h"

int host_txn (struct host *h, struct err *e)
{
    if (h->in_txn)
        return 0;
    if (store_begin (h->store, e) < 0)
        return -1;
    h->in_txn = true;
    return 0;
}

int host_save_task (struct host *h, const struct task *t, bool is_new)
{
    struct err e;
    int rc = host_txn (h, &e);
    if (rc == 0)
        rc = is_new ? store_task_insert (h->store, t, &e) : store_task_update (h->store, t, &e);
    if (rc < 0) {
        log_err ("store: task %" PRIu64 ": %s", t->id, e.text);
        h->store_failed = true;
        h->last_err = e;
    }
    return rc;
}

int host_save_node (struct host *h, struct node *n)
{
    struct err e;
    struct node_row row = {
        .hostname = n->hostname, .node_id = n->node_id, .url = n->url,
        .total_cores = n->total_cores, .memory_total_bytes = n->memory_total,
        .status = n->online ? NODE_ONLINE : NODE_OFFLINE, .last_heartbeat = n->last_seen,
    };
    char *numa = n->numa ? json_dumps (n->numa, JSON_COMPACT) : NULL;
    char *gpus = json_dumps (n->gpus, JSON_COMPACT);
    row.numa_json = numa;
    row.gpu_json = gpus;
    int rc = host_txn (h, &e);
    if (rc == 0)
        rc = store_node_upsert (h->store, &row, &e);
    free (numa);
    free (gpus);
    if (rc < 0) {
        log_err ("store: node %s: %s", n->hostname, e.text);
        h->store_failed = true;
        h->last_err = e;
    }
    return rc;
}

static int restore_node_cb (struct node_row *row, void *arg)
{
    struct host *h = arg;
    struct node *n = node_add (h, row->hostname);
    task_set_str (&n->node_id, row->node_id ? row->node_id : "");
    task_set_str (&n->url, row->url ? row->url : "");
    n->total_cores = row->total_cores;
    n->memory_total = row->memory_total_bytes;
    n->numa = row->numa_json ? json_loads (row->numa_json, 0, NULL) : NULL;
    json_t *g = row->gpu_json ? json_loads (row->gpu_json, 0, NULL) : NULL;
    if (json_is_array (g)) {
        json_decref (n->gpus);
        n->gpus = g;
    } else
        json_decref (g);
    /* a node that was online gets one full timeout to reconnect before its tasks are lost */
    n->online = row->status && strcmp (row->status, NODE_ONLINE) == 0;
    n->last_seen = n->online ? h->start_ms : row->last_heartbeat;
    node_row_free (row);
    return 0;
}

static int restore_task_cb (struct task *t, void *arg)
{
    sched_restore (arg, t);
    return 0;
}

static int mkdir_p (const char *path, mode_t mode)
{
    char buf[4096];
    snprintf (buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir (buf, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir (buf, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void usage (FILE *out)
{
    fprintf (out, "usage: hakuriver.host [-c|--config PATH] [--check-config] [--dump-config]\n");
}

int host_main (int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'C' },
        { "dump-config", no_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    bool check = false, dump = false;
    int c, exit_rc = 1;
    /* Without TZ, glibc's mktime() (json_out.c: the runners' local times) stats
     * /etc/localtime on every call; with it, once. A time zone changed while the host runs
     * is then seen at the next start, as with most daemons. */
    if (!getenv ("TZ"))
        setenv ("TZ", ":/etc/localtime", 0);
    while ((c = getopt_long (argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'C': check = true; break;
        case 'D': dump = true; break;
        case 'h': usage (stdout); return 0;
        default: usage (stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "hakuriver.host: unexpected argument `%s`\n", argv[optind]);
        usage (stderr);
        return 2;
    }
    struct conf conf;
    struct err e = { 0 };
    memset (&conf, 0, sizeof conf);
    char *path = conf_find (config, &e);
    if (!path && e.text[0]) {
        fprintf (stderr, "hakuriver.host: %s\n", e.text);
        return 1;
    }
    if (conf_load (&conf, path, &e) < 0) {
        fprintf (stderr, "hakuriver.host: %s\n", e.text);
        free (path);
        conf_free (&conf);
        return 1;
    }
    free (path);
    if (check || dump) {
        if (dump)
            conf_dump (&conf, stdout);
        else
            printf ("configuration OK\n");
        conf_free (&conf);
        return 0;
    }

    struct host *h = xcalloc (1, sizeof *h);
    struct MHD_Daemon *httpd = NULL;
    struct ssh_proxy *proxy = NULL;
    int epfd = -1, sigfd = -1;
    h->conf = &conf;
    h->start_ms = now_ms ();
    idmap_init (&h->active);
    enum log_level lvl = LOG_LEVEL_INFO;
    log_level_parse (conf.log_level ? conf.log_level : "info", &lvl);
    log_init ("host", lvl);
    if (conf.host_log_file && *conf.host_log_file && log_open_file (conf.host_log_file) < 0)
        fprintf (stderr, "hakuriver.host: cannot open log file `%s`: %s\n", conf.host_log_file,
                 strerror (errno));
    if (!conf.api_token || !*conf.api_token)
        log_warn ("no [auth] api_token configured: the API accepts every request");

    char *outs = xasprintf ("%s/%s", conf.shared_dir, DIR_TASK_OUTPUTS);
    char *errs = xasprintf ("%s/%s", conf.shared_dir, DIR_TASK_ERRORS);
    int mk = mkdir_p (outs, 0755) | mkdir_p (errs, 0755);
    free (outs);
    free (errs);
    if (mk < 0) {
        log_err ("cannot create log directories under `%s`: %s", conf.shared_dir,
                 strerror (errno));
        goto cleanup;
    }
    char *dbdir = xstrdup (conf.db_file);
    char *slash = strrchr (dbdir, '/');
    if (slash && slash != dbdir) {
        *slash = '\0';
        mkdir_p (dbdir, 0700);
    }
    free (dbdir);
    h->store = store_open (conf.db_file, &e);
    if (!h->store) {
        log_err ("%s", e.text);
        goto cleanup;
    }
    snowflake_init (&h->ids, 0, store_task_max_id (h->store));
    if (store_node_load_all (h->store, restore_node_cb, h, &e) < 0
        || store_task_load_active (h->store, 0, restore_task_cb, h, &e) < 0) {
        log_err ("restoring state: %s", e.text);
        goto cleanup;
    }
    httpd = http_start (h, conf.host_bind_ip, conf.host_port, &e);
    if (!httpd) {
        log_err ("%s", e.text);
        goto cleanup;
    }
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    signal (SIGPIPE, SIG_IGN);
    sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    epfd = epoll_create1 (EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = http_epoll_fd (httpd);
    epoll_ctl (epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    ev.data.fd = sigfd;
    epoll_ctl (epfd, EPOLL_CTL_ADD, sigfd, &ev);
    /* after the signal mask: the worker thread must not take SIGINT/SIGTERM either */
    h->docker = docker_worker_start (&conf, &e);
    if (h->docker) {
        ev.data.fd = docker_worker_fd (h->docker);
        epoll_ctl (epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    } else {
        log_err ("%s; the /docker/ endpoints answer 503", e.text);
    }
    struct ssh_proxy_opts po = { .bind_ip = conf.host_bind_ip, .port = conf.host_ssh_proxy_port,
                                 .token = conf.api_token };
    proxy = ssh_proxy_start (&po, &e);
    if (!proxy) {
        /* as for the HTTP port: a host that cannot offer what it is configured for stops */
        log_err ("SSH proxy: %s", e.text);
        goto cleanup;
    }
    ev.data.fd = ssh_proxy_fd (proxy);
    epoll_ctl (epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    log_info ("HakuRiver host listening on %s:%d, SSH proxy on port %d (store %s, %zu active "
              "tasks restored)", conf.host_bind_ip, conf.host_port, ssh_proxy_port (proxy),
              conf.db_file, h->active.count);
    printf ("Starting HakuRiver Host server on %s:%d...\n", conf.host_bind_ip, conf.host_port);
    fflush (stdout);

    int64_t next_tick = now_ms () + 1000;
    int64_t next_sweep = next_tick;   /* silent-runner sweep, every cleanup_check_interval */
    exit_rc = 0;
    for (;;) {
        int64_t now = now_ms ();
        long timeout = next_tick > now ? (long)(next_tick - now) : 0;
        long mt = http_timeout_ms (httpd);
        if (mt >= 0 && mt < timeout)
            timeout = mt;
        if (h->sched_dirty || h->in_txn || h->deferred)
            timeout = 0;
        struct epoll_event evs[8];
        int n = epoll_wait (epfd, evs, 8, (int)timeout);
        bool stop = false, docker_ready = false, proxy_ready = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == sigfd) {
                struct signalfd_siginfo si;
                if (read (sigfd, &si, sizeof si) == sizeof si) {
                    log_info ("received signal %u, shutting down", si.ssi_signo);
                    stop = true;
                }
            }
            /* (level-triggered: an eventfd left out of these 8 events comes next time) */
            docker_ready |= h->docker && evs[i].data.fd == docker_worker_fd (h->docker);
            proxy_ready |= evs[i].data.fd == ssh_proxy_fd (proxy);
        }
        http_run (httpd);
        if (docker_ready)
            docker_worker_complete (h->docker); /* answers finished Docker operations */
        if (proxy_ready)
            ssh_proxy_answer (proxy, vps_proxy_lookup, h); /* where is VPS <id>? */
        now = now_ms ();
        if (now >= next_tick) {
            next_tick = now + 1000;
            if (now >= next_sweep) {
                next_sweep = now + (int64_t)conf.cleanup_check_interval * 1000;
                node_check_timeouts (h);
            }
            health_sample (h);
            api_answer_polls (h, true);
        }
        /* before sleep: schedule, commit, then release replies */
        if (h->sched_dirty)
            sched_pass (h);
        if (h->in_txn) {
            if (store_commit (h->store, &e) < 0) {
                log_err ("commit failed: %s", e.text);
                h->store_failed = true;
                h->last_err = e;
            }
            h->in_txn = false;
        }
        if (!h->store_failed)
            api_attach_commands (h);
        http_flush_deferred (h);
        if (h->store_failed) {
            /* memory and disk may disagree now: restart from disk (crash-only) */
            log_err ("state could not be saved; exiting so that a restart reloads it");
            http_run (httpd);
            exit_rc = 1;
            break;
        }
        api_answer_polls (h, false);
        /* Replies released above are only sent from inside MHD_run: run it now rather
         * than at the next event or tick. */
        for (int spin = 0; spin < 4 && http_take_resumed (); spin++)
            http_run (httpd);
        if (stop)
            break;
    }

cleanup:
    http_refuse_new ();
    ssh_proxy_stop (proxy);
    /* Docker requests waiting for the worker are answered 503 and resumed, the thread joined */
    docker_worker_stop (h->docker);
    h->docker = NULL;
    /* suspended long-polls must be resumed before the daemon stops */
    for (struct node *n = h->nodes; n; n = n->next)
        if (n->poll) {
            n->poll_deadline = 0;
        }
    if (httpd) {
        api_answer_polls (h, true);
        http_run (httpd);
        for (int spin = 0; spin < 4 && http_take_resumed (); spin++)
            http_run (httpd);
    }
    if (epfd >= 0)
        close (epfd);
    if (sigfd >= 0)
        close (sigfd);
    http_stop (httpd);
    if (h->in_txn)
        store_rollback (h->store);
    size_t pos = 0;
    struct atask *a;
    while ((a = idmap_next (&h->active, &pos, NULL))) {
        task_destroy (a->task);
        free (a);
    }
    sched_free (h);
    idmap_free (&h->active);
    node_free_all (h);
    health_free (h);
    store_close (h->store);
    free (h);
    conf_free (&conf);
    return exit_rc;
}
