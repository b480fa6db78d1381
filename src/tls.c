/*
 * tls.c - certificates for inbound TLS, read once by the master and turned
 * into OpenSSL contexts in the smtpd.
 *
 * The files are read as PEM text before the children drop privileges (a
 * key is usually readable by root only) and handed down in memory.  Every
 * certificate gets its own SSL_CTX; the servername callback switches a
 * connection to the context whose certificate names the client's SNI.
 *
 * What TLS 1.2 may agree on is chosen here, not left to OpenSSL's
 * default, which still takes RSA key exchange (no forward secrecy) and
 * CBC suites: by default only ECDHE or DHE key exchange with an AEAD
 * cipher, the suites of Mozilla's "intermediate" profile; `tls-ciphers
 * compat` gives old peers OpenSSL's default list back, but for RSA key
 * exchange.  An MTA on port
 * 25 whose client fails the handshake usually retries in plaintext, so
 * an administrator who sees such clients may prefer compat.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "tls.h"
#include "util.h"

/* a PEM file larger than this is surely not a certificate or key */
#define TLS_PEM_MAX (1024 * 1024)

/* tls-ciphers modern, TLS 1.2: forward secrecy and AEAD only, in the
 * server's order of preference (DHE for clients without ECDHE, with
 * OpenSSL's built-in groups: SSL_CTX_set_dh_auto) */
#define TLS_CIPHERS_MODERN_LIST                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"    \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"    \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"    \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"          \
	"DHE-RSA-CHACHA20-POLY1305"

/* tls-ciphers compat: OpenSSL's default list for old peers, CBC suites
 * included, without RSA key exchange: it decrypts with the private key,
 * which the ca process cannot do for the smtpd through OpenSSL 3 (ca.c),
 * and it has no forward secrecy anyway */
#define TLS_CIPHERS_COMPAT_LIST "DEFAULT:!kRSA"

struct sni_table {
	SSL_CTX **ctx;  /* [0] is the default */
	X509 **cert;
	size_t n;
};

static int sni_index = -1;

static int
read_file(const char *path, char **out, size_t *len, char *err,
    size_t errlen)
{
	struct buf b;
	char chunk[8192], iobuf[BUFSIZ];
	struct stat st;
	size_t n;
	FILE *fp = fopen(path, "re");

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* a key must not stay behind in freed memory that the smtpd
	 * inherits (ca.c): stdio's buffer and ours are cleansed, and the
	 * text read into one allocation, not copied as it grows */
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	buf_init(&b);
	if (fstat(fileno(fp), &st) == 0 && st.st_size > 0 &&
	    st.st_size <= TLS_PEM_MAX)
		buf_reserve(&b, (size_t)st.st_size + 1);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 &&
	    b.len <= TLS_PEM_MAX)
		buf_append(&b, chunk, n);
	fclose(fp);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	util_wipe_registers();
	if (b.len > TLS_PEM_MAX || b.len == 0) {
		snprintf(err, errlen, "%s: %s", path,
		    b.len ? "too large" : "empty");
		OPENSSL_cleanse(b.data, b.len);
		buf_free(&b);
		return -1;
	}
	*out = b.data;
	*len = b.len;
	return 0;
}

/*
 * key_type_check - the key is one ca can sign with: RSA or ECDSA (ca.c
 * hooks those key types' private operations; OpenSSL has no such hook
 * for Ed25519 or Ed448).  Checked here, by the master, so that such a
 * key stops tern at start with a reason instead of failing in each
 * smtpd it starts.  The type is read from the certificate's public key
 * (the pair is checked to match later): decoding the private key here
 * would leave copies of it in freed memory that the smtpd inherits.
 */
static int
key_type_check(const struct tls_pair *p, const char *path, char *err,
    size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(p->cert_pem, (int)p->cert_len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *pub = x ? X509_get0_pubkey(x) : NULL;
	int id = pub ? EVP_PKEY_get_base_id(pub) : EVP_PKEY_NONE;
	int have_cert = x != NULL;

	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	if (id == EVP_PKEY_RSA || id == EVP_PKEY_EC)
		return 0;
	snprintf(err, errlen, !have_cert ? "%s: not a PEM certificate" :
	    "%s: not an RSA or ECDSA key (Ed25519 and Ed448 keys cannot "
	    "be used: tern signs through its ca process, which serves RSA "
	    "and ECDSA keys)", !have_cert ? p->cert_path : path);
	return -1;
}

int
tls_material_load(struct tls_material *m, const char *const *certs,
    const char *const *keys, size_t n, char *err, size_t errlen)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	m->pairs = xcalloc(n ? n : 1, sizeof(*m->pairs));
	for (i = 0; i < n; i++) {
		struct tls_pair *p = &m->pairs[i];

		m->npairs++;
		p->cert_path = xstrdup(certs[i]);
		if (read_file(certs[i], &p->cert_pem, &p->cert_len, err,
		    errlen) == -1 ||
		    read_file(keys[i], &p->key_pem, &p->key_len, err,
		    errlen) == -1 ||
		    key_type_check(p, keys[i], err, errlen) == -1) {
			tls_material_free(m);
			return -1;
		}
	}
	return 0;
}

/* tls_material_drop_keys - forget the keys (cleansed): ca holds them */
void
tls_material_drop_keys(struct tls_material *m)
{
	size_t i;

	for (i = 0; i < m->npairs; i++) {
		if (m->pairs[i].key_pem != NULL)
			OPENSSL_cleanse(m->pairs[i].key_pem,
			    m->pairs[i].key_len);
		free(m->pairs[i].key_pem);
		m->pairs[i].key_pem = NULL;
		m->pairs[i].key_len = 0;
	}
}

void
tls_material_free(struct tls_material *m)
{
	size_t i;

	for (i = 0; i < m->npairs; i++) {
		free(m->pairs[i].cert_path);
		free(m->pairs[i].cert_pem);
		if (m->pairs[i].key_pem != NULL)
			OPENSSL_cleanse(m->pairs[i].key_pem,
			    m->pairs[i].key_len);
		free(m->pairs[i].key_pem);
	}
	free(m->pairs);
	memset(m, 0, sizeof(*m));
}

static void
ssl_error(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s: %s", path, what, e ? buf : "failed");
	ERR_clear_error();
}

/* pair_ctx - one context with this certificate chain and key */
static SSL_CTX *
pair_ctx(const struct tls_pair *p, size_t idx, enum tls_ciphers ciphers,
    X509 **leaf, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, ciphers == TLS_CIPHERS_MODERN ?
	    TLS_CIPHERS_MODERN_LIST : TLS_CIPHERS_COMPAT_LIST) != 1) {
		ssl_error(err, errlen, "OpenSSL has none of the TLS 1.2 "
		    "ciphers of tls-ciphers", p->cert_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	bio = BIO_new_mem_buf(p->cert_pem, (int)p->cert_len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1)
		goto fail;
	/* the rest of the file is the chain */
	for (;;) {
		X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (ca == NULL)
			break;
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			goto fail;
		}
	}
	ERR_clear_error(); /* the end of the file */
	BIO_free(bio);
	bio = NULL;
	if (p->key_pem == NULL) {
		/* the key is ca's (tls_material_drop_keys): the public key
		 * of the certificate, signing through ca */
		key = ca_key(x, idx, err, errlen);
		if (key == NULL) {
			X509_free(x);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else {
		bio = BIO_new_mem_buf(p->key_pem, (int)p->key_len);
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	}
	if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	BIO_free(bio);
	EVP_PKEY_free(key);
	*leaf = x;
	return ctx;
fail:
	ssl_error(err, errlen, key == NULL && x != NULL ?
	    "cannot use the key" : "cannot use the certificate and key",
	    p->cert_path);
	BIO_free(bio);
	EVP_PKEY_free(key);
	X509_free(x);
	SSL_CTX_free(ctx);
	return NULL;
}

static int
servername_cb(SSL *ssl, int *alert, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct sni_table *t = arg;
	size_t i;

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (i = 0; i < t->n; i++) {
		if (X509_check_host(t->cert[i], name, 0, 0, NULL) == 1) {
			if (i > 0)
				SSL_set_SSL_CTX(ssl, t->ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	/* no match: the default certificate, as most servers do */
	return SSL_TLSEXT_ERR_NOACK;
}

static void
sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct sni_table *t = ptr;
	size_t i;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		X509_free(t->cert[i]);
		if (i > 0)
			SSL_CTX_free(t->ctx[i]);
	}
	free(t->ctx);
	free(t->cert);
	free(t);
}

SSL_CTX *
tls_server_ctx(const struct tls_material *m, enum tls_ciphers ciphers,
    char *err, size_t errlen)
{
	struct sni_table *t;
	size_t i;

	if (m->npairs == 0) {
		snprintf(err, errlen, "no certificate configured");
		return NULL;
	}
	if (sni_index == -1)
		sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
		    sni_free);
	t = xcalloc(1, sizeof(*t));
	t->ctx = xcalloc(m->npairs, sizeof(*t->ctx));
	t->cert = xcalloc(m->npairs, sizeof(*t->cert));
	for (i = 0; i < m->npairs; i++) {
		t->ctx[i] = pair_ctx(&m->pairs[i], i, ciphers, &t->cert[i],
		    err, errlen);
		if (t->ctx[i] == NULL) {
			t->n = i;
			if (i > 0)
				SSL_CTX_free(t->ctx[0]);
			sni_free(NULL, t, NULL, 0, 0, NULL);
			return NULL;
		}
		t->n = i + 1;
	}
	/* the default context owns the table: freed with it */
	SSL_CTX_set_ex_data(t->ctx[0], sni_index, t);
	SSL_CTX_set_tlsext_servername_callback(t->ctx[0], servername_cb);
	SSL_CTX_set_tlsext_servername_arg(t->ctx[0], t);
	return t->ctx[0];
}

void
tls_describe(const SSL *ssl, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %s", SSL_get_version(ssl),
	    SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
}
