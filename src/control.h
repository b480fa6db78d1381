/*
 * control.h - the control socket, server side: $home/state/control.sock,
 * a UNIX stream socket bound by the master (which can give it the group
 * of control-group) and served by the queue process on its event loop,
 * for tern queue and tern status (the client is control_client.c, the
 * protocol control_proto.h).
 */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H

#include <sys/types.h>

struct conf;
struct event_base;

/* connections served at once; more wait in the listen backlog */
#define CONTROL_CONNS_MAX 16
/* a request must arrive within this of the connection */
#define CONTROL_READ_TIMEOUT_S 10
/* a client that reads nothing of its answer for this long is dropped */
#define CONTROL_WRITE_TIMEOUT_S 60
/* a listing is produced while less than LOW octets wait to be written,
 * up to HIGH: the queue is read as fast as the client reads, never whole */
#define CONTROL_OUT_LOW (16 * 1024)
#define CONTROL_OUT_HIGH (64 * 1024)
/* tern queue show: at most this much of the header section */
#define CONTROL_SHOW_HEADER_MAX (64 * 1024)

/* control_sock_path - "$home/state/control.sock" into out; -1 when it does
 * not fit a socket address */
int control_sock_path(const char *home, char *out, size_t outlen);
/*
 * control_bind - (master) bind and listen on the control socket: owned by
 * uid (the tern user), group gid and mode 0660 when group is given (-1:
 * none, mode 0600); $home/state is given the same group and mode 0710 so
 * its members can reach it.  Returns the descriptor; fatal on failure.
 */
int control_bind(const char *home, int drop, uid_t uid, gid_t gid,
    gid_t group);
/* control_group_gid - the gid of control-group, or (gid_t)-1 for none;
 * fatal when the group does not exist */
gid_t control_group_gid(const struct conf *c);
/* control_start - (queue process) serve the socket fd on base; peers
 * other than root, this process's user and members of group are refused */
void control_start(const struct conf *c, struct event_base *base, int fd,
    gid_t group);

#endif
