/*
 * master.h - the master process of "tern serve": privileged setup,
 * listening sockets, and supervision of the smtpd and queue processes.
 */
#ifndef TERN_MASTER_H
#define TERN_MASTER_H

struct conf;

/* master_serve - run tern serve in the foreground; returns an exit code.
 * It takes c over (a SIGHUP replaces it) and frees it. */
int master_serve(struct conf *c);

#endif
