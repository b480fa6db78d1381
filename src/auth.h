/*
 * auth.h - credentials for SMTP AUTH (RFC 4954): the users file, the PLAIN
 * (RFC 4616) and LOGIN encodings, and password hashes (crypt(3) through
 * libxcrypt: yescrypt by default, sha512-crypt and the others it knows).
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stddef.h>

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

#endif
