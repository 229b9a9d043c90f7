/* test_task.c - the task state machine's transition table and record helpers */
#include "tap.h"

#include "host/task.h"

int main (void)
{
    enum task_status st;
    for (int i = 0; i < TASK_STATUS_COUNT; i++) {
        const char *name = task_status_name ((enum task_status)i);
        ok (name && task_status_parse (name, &st) == 0 && (int)st == i, "status %s round-trips",
            name);
    }
    ok (task_status_parse ("exploded", &st) < 0, "unknown status is rejected");
    ok (task_status_name (TASK_STATUS_COUNT) == NULL, "out-of-range status has no name");

    /* final states are sticky for the host */
    enum task_status finals[] = { TASK_COMPLETED, TASK_FAILED, TASK_KILLED, TASK_KILLED_OOM };
    for (size_t i = 0; i < 4; i++)
        for (int to = 0; to < TASK_STATUS_COUNT; to++) {
            if (task_transition_allowed (finals[i], (enum task_status)to, ACTOR_HOST)
                || task_transition_allowed (finals[i], (enum task_status)to, ACTOR_RUNNER)) {
                ok (0, "%s -> %s must not be allowed", task_status_name (finals[i]),
                    task_status_name ((enum task_status)to));
            }
        }
    ok (1, "completed, failed, killed and killed_oom have no way out");
    ok (task_transition_allowed (TASK_LOST, TASK_RUNNING, ACTOR_RUNNER),
        "a lost task is revived by its runner's report");
    ok (!task_transition_allowed (TASK_LOST, TASK_RUNNING, ACTOR_HOST),
        "the host alone cannot revive a lost task");
    ok (task_transition_allowed (TASK_RUNNING, TASK_QUEUED, ACTOR_HOST),
        "the host may requeue a running task on node loss");
    ok (!task_transition_allowed (TASK_RUNNING, TASK_QUEUED, ACTOR_RUNNER),
        "a runner cannot requeue");
    ok (task_transition_allowed (TASK_ASSIGNING, TASK_RUNNING, ACTOR_RUNNER),
        "assigning -> running by the runner");
    ok (task_transition_allowed (TASK_RUNNING, TASK_KILLED_OOM, ACTOR_RUNNER),
        "running -> killed_oom by the runner");
    ok (task_transition_allowed (TASK_PAUSED, TASK_KILLED, ACTOR_HOST),
        "a paused task can be killed (0.3 refused with 409)");
    ok (!task_transition_allowed (TASK_QUEUED, TASK_RUNNING, ACTOR_RUNNER),
        "a queued task cannot be reported running");
    ok (!task_transition_allowed (TASK_RUNNING, TASK_ASSIGNING, ACTOR_RUNNER),
        "no way back to assigning");
    ok (!task_transition_allowed ((enum task_status)-1, TASK_RUNNING, ACTOR_HOST),
        "out-of-range from is refused");

    ok (task_status_holds_resources (TASK_PAUSED), "paused tasks keep their resources");
    ok (!task_status_holds_resources (TASK_QUEUED), "queued tasks hold nothing");
    ok (!task_status_holds_resources (TASK_LOST), "lost tasks hold nothing");

    struct task *t = task_create ();
    is_int (t->numa, -1, "new task has no NUMA target");
    is_int (t->attempt, 1, "new task is attempt 1");
    is_str (t->gpus_json, "[]", "new task has no GPUs");
    task_set_str (&t->node, "n1");
    task_set_str (&t->error_message, "boom");
    struct task *c = task_copy (t);
    ok (c->node != t->node, "copy owns its strings");
    is_str (c->node, "n1", "copy keeps node");
    task_set_str (&t->node, NULL);
    ok (t->node == NULL, "task_set_str accepts NULL");
    task_destroy (t);
    task_destroy (c);
    task_destroy (NULL);
    ok (1, "task_destroy (NULL) is safe");
    return done_testing ();
}
