/*
 * pickup.h - the queue process takes local submissions (sendmail) from
 * $home/spool/drop into the queue (see pickup.c, drop.h).
 */
#ifndef TERN_PICKUP_H
#define TERN_PICKUP_H

struct conf;
struct event_base;

/* pickup_start - bind drop/notice, scan now, on a notice and periodically */
void pickup_start(const struct conf *c, struct event_base *base);

/* pickup_drain - take no more drop files (the process is handing over) */
void pickup_drain(void);
/* pickup_busy - 1 while a drop file's message is being committed */
int pickup_busy(void);

#endif
