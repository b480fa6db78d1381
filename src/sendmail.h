/*
 * sendmail.h - the sendmail(1), mailq(1) and newaliases(1) commands
 * (tern(8), SENDMAIL): chosen by the name the binary is run as, or as
 * verbs of tern.
 */
#ifndef TERN_SENDMAIL_H
#define TERN_SENDMAIL_H

enum sendmail_mode {
	SENDMAIL_SEND = 0,   /* sendmail, -bm: a message on stdin */
	SENDMAIL_SMTP,       /* -bs: an SMTP dialogue on stdin/stdout */
	SENDMAIL_MAILQ,      /* mailq, -bp: tern queue */
	SENDMAIL_NEWALIASES  /* newaliases, -bi */
};

/* sendmail_main - run as sendmail with argv[1..] its options; returns a
 * sysexits(3) code */
int sendmail_main(int argc, char **argv, enum sendmail_mode mode);

#endif
