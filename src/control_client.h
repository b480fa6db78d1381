/*
 * control_client.h - the client of the control socket: tern queue, tern
 * status, and whatever else lists the queue (mailq).  Each function sends
 * one request, copies the answer's data lines to out and returns an exit
 * status from sysexits.h (0 on success); errors are written to stderr as
 * "tern: SENTENCE".
 */
#ifndef TERN_CONTROL_CLIENT_H
#define TERN_CONTROL_CLIENT_H

#include <stdio.h>

struct conf;

/* the longest answer line the client takes (a listing line of a message
 * with many recipients) */
#define CONTROL_CLIENT_LINE_MAX (16 * 1024 * 1024)
/* the client gives up when the server says nothing for this long */
#define CONTROL_CLIENT_TIMEOUT_S 120

/* control_request - send request (one line, no LF) to the control socket
 * under c's home and copy the answer to out */
int control_request(const struct conf *c, const char *request, FILE *out);
/* queue_list - the queue, a line (json: a JSON object) per message, to
 * out: what tern queue and mailq print */
int queue_list(const struct conf *c, FILE *out, int json);
/* control_client_main - tern queue ... / tern status ...: argv[0] is the
 * verb; -c FILE and --json anywhere */
int control_client_main(int argc, char **argv);

#endif
