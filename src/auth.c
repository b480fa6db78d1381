/*
 * auth.c - the users file, SASL PLAIN/LOGIN decoding and password hashes.
 *
 * Hashes are checked with libxcrypt's crypt_rn (the system's own
 * implementation of yescrypt, sha512-crypt...), compared in constant time.
 * Base64 is OpenSSL's EVP_DecodeBlock with the padding checks it lacks.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "util.h"

struct auth_user {
	char *name;
	char *hash;
};

struct auth_users {
	struct auth_user *v;
	size_t n;
};

/* a valid hash of a random password: unknown users are checked against it
 * so that they cost as much time as known ones */
static char dummy_hash[CRYPT_OUTPUT_SIZE];

static int
hash_usable(const char *hash)
{
	return crypt_checksalt(hash) == CRYPT_SALT_OK;
}

static int
add_line(struct auth_users *u, char *line, const char *path, size_t lineno,
    char *err, size_t errlen)
{
	char *colon = strchr(line, ':');

	if (colon == NULL || colon == line) {
		snprintf(err, errlen, "%s:%zu: expected name:hash", path,
		    lineno);
		return -1;
	}
	*colon = '\0';
	if (strlen(line) > AUTH_NAME_MAX || !hash_usable(colon + 1)) {
		snprintf(err, errlen, "%s:%zu: %s", path, lineno,
		    strlen(line) > AUTH_NAME_MAX ? "name too long" :
		    "not a password hash libcrypt knows (use tern passwd)");
		return -1;
	}
	u->v = xreallocarray(u->v, u->n + 1, sizeof(*u->v));
	u->v[u->n].name = xstrdup(line);
	u->v[u->n].hash = xstrdup(colon + 1);
	u->n++;
	return 0;
}

struct auth_users *
auth_users_load(const char *path, char *err, size_t errlen)
{
	struct auth_users *u;
	char *line = NULL, *p, iobuf[BUFSIZ];
	size_t cap = 0, lineno = 0;
	ssize_t len;
	FILE *fp;

	fp = fopen(path, "re");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return NULL;
	}
	/* the hashes must not stay behind in freed memory (stdio's buffer,
	 * getline's line): the master forks the smtpd, which must not hold
	 * them (authd.c); both are cleansed below */
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	u = xcalloc(1, sizeof(*u));
	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = '\0';
		if (strlen(line) != (size_t)len) {
			/* the rest of the line would be ignored unseen */
			snprintf(err, errlen, "%s:%zu: NUL byte in line", path,
			    lineno);
			auth_users_free(u);
			u = NULL;
			break;
		}
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		if (add_line(u, p, path, lineno, err, errlen) == -1) {
			auth_users_free(u);
			u = NULL;
			break;
		}
	}
	if (line != NULL)
		OPENSSL_cleanse(line, cap);
	free(line);
	fclose(fp);
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	util_wipe_registers();
	return u;
}

void
auth_users_free(struct auth_users *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->n; i++) {
		free(u->v[i].name);
		OPENSSL_cleanse(u->v[i].hash, strlen(u->v[i].hash));
		free(u->v[i].hash);
	}
	free(u->v);
	free(u);
}

size_t
auth_users_count(const struct auth_users *u)
{
	return u ? u->n : 0;
}

int
auth_check(const struct auth_users *u, const char *name,
    const char *password)
{
	struct crypt_data cd;
	const char *hash = NULL;
	size_t i, len;
	int ok;

	for (i = 0; u != NULL && i < u->n; i++)
		if (strcasecmp(u->v[i].name, name) == 0)
			hash = u->v[i].hash;
	if (hash == NULL) {
		if (dummy_hash[0] == '\0' && auth_hash("x", dummy_hash,
		    sizeof(dummy_hash)) == -1)
			return 0;
		hash = dummy_hash;
	}
	memset(&cd, 0, sizeof(cd));
	if (crypt_rn(password, hash, &cd, sizeof(cd)) == NULL ||
	    cd.output[0] == '*')
		return 0;
	len = strlen(hash);
	ok = strlen(cd.output) == len &&
	    CRYPTO_memcmp(cd.output, hash, len) == 0 && hash != dummy_hash;
	OPENSSL_cleanse(&cd, sizeof(cd));
	return ok;
}

int
auth_hash(const char *password, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	/* NULL random bytes: libxcrypt reads the system's random source */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	memset(&cd, 0, sizeof(cd));
	if (crypt_rn(password, salt, &cd, sizeof(cd)) == NULL ||
	    cd.output[0] == '*' || strlen(cd.output) >= outlen)
		return -1;
	memcpy(out, cd.output, strlen(cd.output) + 1);
	OPENSSL_cleanse(&cd, sizeof(cd));
	return 0;
}

int
auth_b64_decode(const char *in, unsigned char *out, size_t outlen,
    size_t *n)
{
	size_t len = strlen(in), pad = 0, need;
	int got;

	if (len % 4 != 0 || len / 4 * 3 >= outlen || len > INT32_MAX)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad++;
	if (len > 1 && in[len - 2] == '=')
		pad++;
	/* '=' only as padding at the end */
	if (strcspn(in, "=") < len - pad)
		return -1;
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (got < 0)
		return -1;
	need = (size_t)got - pad; /* EVP_DecodeBlock counts the padding */
	out[need] = '\0';
	*n = need;
	return 0;
}

void
auth_b64_encode(const void *in, size_t n, char *out, size_t outlen)
{
	if (outlen < 4 * ((n + 2) / 3) + 1 || n > INT32_MAX)
		panic("auth_b64_encode: output too small");
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int
auth_plain_decode(const char *b64, char *user, size_t userlen, char *pass,
    size_t passlen)
{
	unsigned char buf[AUTH_NAME_MAX * 2 + AUTH_PASS_MAX + 3];
	const char *authz, *authc, *pw;
	size_t n, l1, l2;

	if (auth_b64_decode(b64, buf, sizeof(buf), &n) == -1)
		return -1;
	authz = (const char *)buf;
	l1 = strnlen(authz, n);
	if (l1 >= n)
		return -1;
	authc = authz + l1 + 1;
	l2 = strnlen(authc, n - l1 - 1);
	if (l1 + 1 + l2 >= n)
		return -1;
	pw = authc + l2 + 1;
	if (l2 == 0 || l2 >= userlen || strlen(pw) != n - l1 - l2 - 2 ||
	    strlen(pw) >= passlen || strlen(pw) == 0)
		return -1;
	if (l1 > 0 && strcasecmp(authz, authc) != 0)
		return -1;
	memcpy(user, authc, l2 + 1);
	memcpy(pass, pw, strlen(pw) + 1);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

enum { MECH_PLAIN = 1, MECH_LOGIN };
enum { STEP_PLAIN, STEP_LOGIN_USER, STEP_LOGIN_PASS };

/* base64 of "Username:" and "Password:", the LOGIN challenges */
static const char login_user[] = "VXNlcm5hbWU6";
static const char login_pass[] = "UGFzc3dvcmQ6";

/* b64_field - decode one LOGIN response into out (no NUL inside) */
static int
b64_field(const char *in, char *out, size_t outlen)
{
	size_t n;

	if (auth_b64_decode(in, (unsigned char *)out, outlen, &n) == -1 ||
	    n == 0 || strlen(out) != n)
		return -1;
	return 0;
}

/* sasl_response - a response to the challenge of a->step */
static enum auth_step
sasl_response(struct auth_sasl *a, const char *line, const char **challenge)
{
	switch (a->step) {
	case STEP_PLAIN:
		if (auth_plain_decode(line, a->user, sizeof(a->user), a->pass,
		    sizeof(a->pass)) == -1)
			return AUTH_STEP_BAD;
		return AUTH_STEP_DONE;
	case STEP_LOGIN_USER:
		if (b64_field(line, a->user, sizeof(a->user)) == -1)
			return AUTH_STEP_BAD;
		a->step = STEP_LOGIN_PASS;
		*challenge = login_pass;
		return AUTH_STEP_CHALLENGE;
	default:
		if (b64_field(line, a->pass, sizeof(a->pass)) == -1)
			return AUTH_STEP_BAD;
		return AUTH_STEP_DONE;
	}
}

enum auth_step
auth_sasl_start(struct auth_sasl *a, const char *arg, const char **challenge)
{
	const char *sp = strchr(arg, ' ');
	size_t mlen = sp ? (size_t)(sp - arg) : strlen(arg);

	memset(a, 0, sizeof(*a));
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		a->mech = MECH_PLAIN;
		a->step = STEP_PLAIN;
		*challenge = "";
	} else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		a->mech = MECH_LOGIN;
		a->step = STEP_LOGIN_USER;
		*challenge = login_user;
	} else {
		return AUTH_STEP_MECH;
	}
	if (sp == NULL)
		return AUTH_STEP_CHALLENGE;
	/* an initial response; "=" is an empty one (RFC 4954 4) */
	return auth_sasl_next(a, strcmp(sp + 1, "=") == 0 ? "" : sp + 1,
	    challenge);
}

enum auth_step
auth_sasl_next(struct auth_sasl *a, const char *line, const char **challenge)
{
	if (strcmp(line, "*") == 0)
		return AUTH_STEP_CANCEL;
	return sasl_response(a, line, challenge);
}

void
auth_sasl_clear(struct auth_sasl *a)
{
	OPENSSL_cleanse(a, sizeof(*a));
}

#define LIMIT_WINDOW 3600

struct limit_slot {
	char addr[64];
	int64_t start; /* first failure of the window */
	unsigned count;
};

struct auth_limiter {
	struct limit_slot *v;
	size_t n;
};

struct auth_limiter *
auth_limiter_new(size_t slots)
{
	struct auth_limiter *l = xcalloc(1, sizeof(*l));

	l->n = slots ? slots : 1;
	l->v = xcalloc(l->n, sizeof(*l->v));
	return l;
}

void
auth_limiter_free(struct auth_limiter *l)
{
	if (l == NULL)
		return;
	free(l->v);
	free(l);
}

/* slot_find - addr's slot, or NULL */
static struct limit_slot *
slot_find(struct auth_limiter *l, const char *addr)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].count > 0 && strcmp(l->v[i].addr, addr) == 0)
			return &l->v[i];
	return NULL;
}

unsigned
auth_limiter_count(struct auth_limiter *l, const char *addr, int64_t now)
{
	struct limit_slot *s = slot_find(l, addr);

	if (s == NULL)
		return 0;
	if (now - s->start >= LIMIT_WINDOW) {
		s->count = 0;
		return 0;
	}
	return s->count;
}

void
auth_limiter_fail(struct auth_limiter *l, const char *addr, int64_t now)
{
	struct limit_slot *s = slot_find(l, addr), *old = &l->v[0];
	size_t i;

	if (s != NULL && now - s->start >= LIMIT_WINDOW)
		s->count = 0;
	if (s == NULL || s->count == 0) {
		/* a free slot, else the one whose window began first */
		for (i = 0; s == NULL && i < l->n; i++) {
			if (l->v[i].count == 0)
				s = &l->v[i];
			else if (l->v[i].start < old->start)
				old = &l->v[i];
		}
		if (s == NULL)
			s = old;
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		s->start = now;
		s->count = 0;
	}
	if (s->count < UINT32_MAX)
		s->count++;
}

/* auth_request_parse - split a password check request (authd.c); -1
 * when malformed */
int
auth_request_parse(const unsigned char *p, size_t len, uint32_t *id,
    const char **user, const char **pass)
{
	const unsigned char *nul1, *nul2;

	if (len < 4 + 2 || len > AUTH_REQ_MAX)
		return -1;
	memcpy(id, p, 4);
	nul1 = memchr(p + 4, '\0', len - 4);
	if (nul1 == NULL || nul1 == p + 4 ||
	    (size_t)(nul1 - (p + 4)) > AUTH_NAME_MAX)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p));
	if (nul2 == NULL || nul2 != p + len - 1 ||
	    (size_t)(nul2 - (nul1 + 1)) > AUTH_PASS_MAX)
		return -1;
	*user = (const char *)p + 4;
	*pass = (const char *)nul1 + 1;
	return 0;
}
