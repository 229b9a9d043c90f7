/* entry.h - entry points of the one executable, selected by argv[0] or the first word */
#ifndef HR_ENTRY_H
#define HR_ENTRY_H

int host_main (int argc, char **argv);
int runner_main (int argc, char **argv);
int cli_client_main (int argc, char **argv);
int cli_task_main (int argc, char **argv);
int cli_init_main (int argc, char **argv);
int cli_docker_main (int argc, char **argv);
int cli_docker_shell_main (int argc, char **argv);
int cli_vps_main (int argc, char **argv);
int cli_ssh_main (int argc, char **argv);
int hakurun_main (int argc, char **argv);

#endif
