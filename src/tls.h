/*
 * tls.h - the server side of TLS (RFC 3207 STARTTLS, RFC 8314 implicit
 * TLS): certificates and keys read by the privileged master, contexts
 * built from them in the smtpd, the certificate chosen by SNI.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "conf.h"

/* one certificate and its key, as read from their files */
struct tls_pair {
	char *cert_path;
	char *cert_pem;
	size_t cert_len;
	char *key_pem;   /* secret: cleansed when freed */
	size_t key_len;
};

struct tls_material {
	struct tls_pair *pairs; /* the first is the default */
	size_t npairs;
};

/*
 * tls_material_load - read every cert=/key= pair (PEM files); called by
 * the master, which may be the only process allowed to read the keys.
 * Returns 0, or -1 with "path: why" in err.
 */
int tls_material_load(struct tls_material *m, const char *const *certs,
    const char *const *keys, size_t n, char *err, size_t errlen);
/* tls_material_free - release, cleansing the keys */
void tls_material_free(struct tls_material *m);
/* tls_material_drop_keys - forget the keys (cleansed); tls_server_ctx
 * then signs through ca (ca.c) */
void tls_material_drop_keys(struct tls_material *m);

/*
 * tls_server_ctx - a server context: TLS 1.2 minimum, the TLS 1.2 ciphers
 * of the tls-ciphers setting (TLS 1.3: OpenSSL's default suites), the
 * first pair as default and the others chosen by SNI (a client's server
 * name matching a certificate's DNS names, wildcards as X509_check_host
 * does).  Checks that every key matches its certificate.  NULL with the
 * reason in err.
 */
SSL_CTX *tls_server_ctx(const struct tls_material *m,
    enum tls_ciphers ciphers, char *err, size_t errlen);

/* tls_describe - "TLSv1.3 TLS_AES_256_GCM_SHA384" for a session */
void tls_describe(const SSL *ssl, char *out, size_t outlen);

#endif
