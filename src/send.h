/*
 * send.h - "tern send": compose a message with attachments from the
 * command line and submit it, to the local drop (tern sendmail) or to a
 * submission server.
 */
#ifndef TERN_SEND_H
#define TERN_SEND_H

#include <stddef.h>

/* the largest body or attachment tern send reads (each) */
#define SEND_INPUT_MAX (64 * 1024 * 1024)
/* the longest password read from a file or the terminal */
#define SEND_PASSWORD_MAX 1024

/*
 * send_parse_server - --server's "host:port", "[v6]:port" or "host" (port
 * 0: the default) into host (with the brackets of an IPv6 address) and
 * *port; the host only of letters, digits, '.', '-', '_' (or hex digits,
 * ':' and '.' in brackets), so that it cannot change the URL it goes
 * into; -1 when malformed or longer than hostlen - 1
 */
int send_parse_server(const char *s, char *host, size_t hostlen, int *port);

/* send_main - the verb: argv[0] is "send"; returns an exit status of
 * sysexits.h (0 when the message was handed over) */
int send_main(int argc, char **argv);

#endif
