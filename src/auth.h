/*
 * auth.h - credentials for SMTP AUTH (RFC 4954): the users file, the PLAIN
 * (RFC 4616) and LOGIN encodings, and password hashes (crypt(3) through
 * libxcrypt: yescrypt by default, sha512-crypt and the others it knows).
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* longest user name and password we accept */
#define AUTH_NAME_MAX 255
#define AUTH_PASS_MAX 1024

struct auth_users;

/*
 * auth_users_load - read a users file: "name:hash" lines, '#' comments and
 * blank lines ignored.  A name is a local part or an address; a hash must
 * be one libxcrypt understands.  Returns NULL with "path:line: why" in err.
 */
struct auth_users *auth_users_load(const char *path, char *err,
    size_t errlen);
/* auth_users_free - release a users table */
void auth_users_free(struct auth_users *u);
/* auth_users_count - number of users */
size_t auth_users_count(const struct auth_users *u);

/*
 * auth_check - 1 when password is name's (name compared case-
 * insensitively), else 0.  An unknown name costs a hash computation too,
 * so the answer's timing does not tell which names exist.
 */
int auth_check(const struct auth_users *u, const char *name,
    const char *password);

/* a password check request to authd: a 4-byte id, user, NUL, password,
 * NUL */
#define AUTH_REQ_MAX (4 + AUTH_NAME_MAX + 1 + AUTH_PASS_MAX + 1)
/* auth_request_parse - split a request packet into its id, user and
 * password (pointers into p); -1 when malformed.  Pure. */
int auth_request_parse(const unsigned char *p, size_t len, uint32_t *id,
    const char **user, const char **pass);

/* auth_hash - a new hash of password (yescrypt); -1 on failure */
int auth_hash(const char *password, char *out, size_t outlen);

/* auth_b64_decode - RFC 4648 base64 to bytes; -1 when malformed or when
 * it does not fit (out gets a NUL after the *n bytes) */
int auth_b64_decode(const char *in, unsigned char *out, size_t outlen,
    size_t *n);
/* auth_b64_encode - bytes to base64 (out needs 4 * ((n + 2) / 3) + 1) */
void auth_b64_encode(const void *in, size_t n, char *out, size_t outlen);

/*
 * auth_plain_decode - RFC 4616 "authzid NUL authcid NUL passwd" in base64:
 * the user and password.  An authzid other than empty or the user itself
 * is refused (we do not let one user act for another).  -1 when malformed.
 */
int auth_plain_decode(const char *b64, char *user, size_t userlen,
    char *pass, size_t passlen);

/* SASL exchanges (RFC 4954 4, PLAIN RFC 4616, LOGIN) */
enum auth_step {
	AUTH_STEP_CHALLENGE, /* send "334 challenge", read a response line */
	AUTH_STEP_DONE,      /* user and pass are set: check them */
	AUTH_STEP_BAD,       /* malformed response: 501 5.5.2 */
	AUTH_STEP_CANCEL,    /* the client sent "*": 501 5.7.0 */
	AUTH_STEP_MECH       /* unknown mechanism: 504 5.5.4 */
};

struct auth_sasl {
	int mech;   /* internal */
	int step;   /* internal */
	char user[AUTH_NAME_MAX + 1];
	char pass[AUTH_PASS_MAX + 1];
};

/* auth_sasl_start - the argument of AUTH: "MECH [initial-response]";
 * *challenge is the base64 text to send with 334 */
enum auth_step auth_sasl_start(struct auth_sasl *a, const char *arg,
    const char **challenge);
/* auth_sasl_next - one response line of the client */
enum auth_step auth_sasl_next(struct auth_sasl *a, const char *line,
    const char **challenge);
/* auth_sasl_clear - forget the credentials (cleansed) */
void auth_sasl_clear(struct auth_sasl *a);

/* failed logins per client address, over a sliding hour */
struct auth_limiter;

/* auth_limiter_new - remember up to slots addresses (the oldest make
 * room) */
struct auth_limiter *auth_limiter_new(size_t slots);
/* auth_limiter_free - release a limiter */
void auth_limiter_free(struct auth_limiter *l);
/* auth_limiter_count - failures of addr within the hour before now */
unsigned auth_limiter_count(struct auth_limiter *l, const char *addr,
    int64_t now);
/* auth_limiter_fail - one more failure of addr at now (unix seconds) */
void auth_limiter_fail(struct auth_limiter *l, const char *addr,
    int64_t now);

#endif
