/*
 * send.h - "tern send": compose a message with attachments from the
 * command line and submit it, to the local drop (tern sendmail) or to a
 * submission server.
 */
#ifndef TERN_SEND_H
#define TERN_SEND_H

/* the largest body or attachment tern send reads (each) */
#define SEND_INPUT_MAX (64 * 1024 * 1024)
/* the longest password read from a file or the terminal */
#define SEND_PASSWORD_MAX 1024

/* send_main - the verb: argv[0] is "send"; returns an exit status of
 * sysexits.h (0 when the message was handed over) */
int send_main(int argc, char **argv);

#endif
