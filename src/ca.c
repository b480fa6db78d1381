/*
 * ca.c - the TLS private keys, kept out of the smtpd, as OpenSMTPD's ca
 * process does.
 *
 * The master reads the keys (as root) and hands them, in memory, to a
 * small process, ca, forked beside each smtpd before it drops root (its
 * child, living and dying with it) and running as the queue's user under
 * the filters (sandbox.c).  The smtpd drops its copy (cleansed) before it
 * touches the network.  For each certificate the smtpd makes a key of the
 * certificate's public key whose private operations -- the RSA
 * private-key operation, an ECDSA signature -- are methods that ask ca
 * over a SOCK_SEQPACKET socketpair: what the handshake needs signed
 * (digests, padded blocks), never the key, crosses it.
 *
 * With OpenSSL 3 that is an RSA_METHOD and an EC_KEY_METHOD: deprecated
 * API, but the one way to hook a key's private operation without writing
 * a provider (a provider is several hundred lines of dispatch tables for
 * the same two calls).  A key whose method is not OpenSSL's own is kept
 * "legacy" by OpenSSL 3 (the method is set before the key is assigned),
 * so its pkey methods call ours: PSS and PKCS#1 padding are done in the
 * smtpd, and ca computes the raw RSA operation on the padded block.  The
 * deprecation warnings are silenced in this file alone.  Ed25519 keys have
 * no such hook: the master refuses such a key at start (tls.c).
 *
 * The call is synchronous (the handshake waits for its signature inside
 * OpenSSL): a round trip and the signature itself, as before when the
 * smtpd signed on its own loop; a ca that does not answer within
 * CA_WAIT_MS fails the handshake, never the loop for longer.
 *
 * Protocol: a request is a 4-byte id, the certificate's index (4), the
 * operation (1), the RSA padding (4), the data; the answer is the id, a
 * 4-byte result length (-1: failed) and the result.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* RSA_METHOD, EC_KEY_METHOD: above */

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ca.h"
#include "tls.h"
#include "util.h"

/* the largest input and output: an RSA block of 8192 bits, a digest */
#define CA_DATA_MAX 1024
#define CA_HDR 13
#define CA_WAIT_MS 10000

enum ca_op { CA_RSA_PRIV_ENC = 1, CA_RSA_PRIV_DEC = 2, CA_ECDSA_SIGN = 3 };

/* ca_op_run - one private-key operation with key; the result's length
 * or -1 */
static int
ca_op_run(EVP_PKEY *key, int op, int padding, const unsigned char *in,
    size_t inlen, unsigned char *out)
{
	const RSA *rsa = EVP_PKEY_get0_RSA(key);
	const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
	unsigned int siglen = 0;

	switch (op) {
	case CA_RSA_PRIV_ENC:
		if (rsa == NULL || (size_t)RSA_size(rsa) > CA_DATA_MAX)
			return -1;
		return RSA_private_encrypt((int)inlen, in, out, (RSA *)rsa,
		    padding);
	case CA_RSA_PRIV_DEC:
		if (rsa == NULL || (size_t)RSA_size(rsa) > CA_DATA_MAX)
			return -1;
		return RSA_private_decrypt((int)inlen, in, out, (RSA *)rsa,
		    padding);
	case CA_ECDSA_SIGN:
		if (ec == NULL || (size_t)ECDSA_size(ec) > CA_DATA_MAX)
			return -1;
		if (ECDSA_sign(0, in, (int)inlen, out, &siglen,
		    (EC_KEY *)ec) != 1)
			return -1;
		return (int)siglen;
	default:
		return -1;
	}
}

/* ca_main - the ca process: sign with the keys of m on fd until it
 * closes, then exit */
_Noreturn void
ca_main(struct tls_material *m, int fd)
{
	unsigned char req[CA_HDR + CA_DATA_MAX + 1];
	unsigned char rep[8 + CA_DATA_MAX];
	EVP_PKEY **keys = xcalloc(m->npairs ? m->npairs : 1, sizeof(*keys));
	uint32_t idx;
	int32_t padding, n;
	ssize_t len;
	size_t i, nkeys = m->npairs;
	BIO *bio;

	log_set_name("ca");
	for (i = 0; i < m->npairs; i++) {
		bio = BIO_new_mem_buf(m->pairs[i].key_pem,
		    (int)m->pairs[i].key_len);
		keys[i] = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (keys[i] == NULL)
			log_err("%s: cannot read the key",
			    m->pairs[i].cert_path);
	}
	tls_material_free(m);
	for (;;) {
		len = recv(fd, req, sizeof(req), MSG_TRUNC);
		if (len == -1 && errno == EINTR)
			continue;
		if (len <= 0)
			break;
		if (len < CA_HDR || len > CA_HDR + CA_DATA_MAX) {
			log_warn("a malformed request (%zd octets): closing",
			    len);
			break;
		}
		memcpy(&idx, req + 4, 4);
		memcpy(&padding, req + 9, 4);
		n = -1;
		if (idx < nkeys && keys[idx] != NULL)
			n = ca_op_run(keys[idx], req[8], padding, req + CA_HDR,
			    (size_t)len - CA_HDR, rep + 8);
		ERR_clear_error();
		memcpy(rep, req, 4);
		memcpy(rep + 4, &n, 4);
		if (send(fd, rep, 8 + (n > 0 ? (size_t)n : 0), MSG_NOSIGNAL) ==
		    -1)
			break;
	}
	exit(0);
}

/* the smtpd's side */

static struct {
	int fd;
	uint32_t next_id;
	int ex_rsa, ex_ec;
	RSA_METHOD *rsa_meth;
	EC_KEY_METHOD *ec_meth;
} ca = { .fd = -1, .ex_rsa = -1, .ex_ec = -1 };

/* ca_ask - one operation by ca: the result's length into out, or -1 */
static int
ca_ask(uint32_t idx, int op, int padding, const unsigned char *in,
    size_t inlen, unsigned char *out, size_t outlen)
{
	unsigned char req[CA_HDR + CA_DATA_MAX], rep[8 + CA_DATA_MAX];
	struct pollfd pfd = { .fd = ca.fd, .events = POLLIN };
	uint32_t id = ca.next_id++, rid;
	int32_t n;
	ssize_t got;

	if (ca.fd == -1 || inlen > CA_DATA_MAX)
		return -1;
	memcpy(req, &id, 4);
	memcpy(req + 4, &idx, 4);
	req[8] = (unsigned char)op;
	memcpy(req + 9, &padding, 4);
	memcpy(req + CA_HDR, in, inlen);
	if (send(ca.fd, req, CA_HDR + inlen, MSG_NOSIGNAL) == -1)
		goto gone;
	for (;;) {
		int rc = poll(&pfd, 1, CA_WAIT_MS);

		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != 1)
			goto gone;
		got = recv(ca.fd, rep, sizeof(rep), MSG_TRUNC);
		if (got < 8 || got > (ssize_t)sizeof(rep))
			goto gone;
		memcpy(&rid, rep, 4);
		/* an answer to an earlier request that timed out: skip */
		if (rid == id)
			break;
	}
	memcpy(&n, rep + 4, 4);
	if (n < 0 || (size_t)n != (size_t)got - 8 || (size_t)n > outlen)
		return -1;
	memcpy(out, rep + 8, (size_t)n);
	return n;
gone:
	log_err("ca does not answer: TLS handshakes fail until the smtpd "
	    "restarts");
	close(ca.fd);
	ca.fd = -1;
	return -1;
}

/* rsa_ask - an RSA private-key operation of rsa by ca */
static int
rsa_ask(int op, int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	uintptr_t idx = (uintptr_t)RSA_get_ex_data(rsa, ca.ex_rsa);

	return ca_ask((uint32_t)idx, op, padding, from, (size_t)flen, to,
	    (size_t)RSA_size(rsa));
}

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	return rsa_ask(CA_RSA_PRIV_ENC, flen, from, to, rsa, padding);
}

static int
rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	return rsa_ask(CA_RSA_PRIV_DEC, flen, from, to, rsa, padding);
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r,
    EC_KEY *eckey)
{
	uintptr_t idx = (uintptr_t)EC_KEY_get_ex_data(eckey, ca.ex_ec);
	int n;

	(void)type;
	(void)kinv;
	(void)r;
	n = ca_ask((uint32_t)idx, CA_ECDSA_SIGN, 0, dgst, (size_t)dlen, sig,
	    (size_t)ECDSA_size(eckey));
	if (n < 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static ECDSA_SIG *
ec_do_sign(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	unsigned char der[CA_DATA_MAX];
	const unsigned char *p = der;
	unsigned int len;

	if (ec_sign(0, dgst, dlen, der, &len, kinv, r, eckey) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, len);
}

/* ca_client_start - (smtpd) private-key operations go to ca on fd */
void
ca_client_start(int fd)
{
	int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	ca.fd = fd;
	ca.ex_rsa = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ca.ex_ec = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ca.rsa_meth = RSA_meth_dup(RSA_get_default_method());
	ca.ec_meth = EC_KEY_METHOD_new(EC_KEY_get_default_method());
	if (ca.rsa_meth == NULL || ca.ec_meth == NULL || ca.ex_rsa < 0 ||
	    ca.ex_ec < 0)
		fatal("ca: cannot make the key methods");
	RSA_meth_set1_name(ca.rsa_meth, "tern ca");
	RSA_meth_set_priv_enc(ca.rsa_meth, rsa_priv_enc);
	RSA_meth_set_priv_dec(ca.rsa_meth, rsa_priv_dec);
	EC_KEY_METHOD_get_sign(EC_KEY_get_default_method(), NULL, &sign_setup,
	    NULL);
	EC_KEY_METHOD_set_sign(ca.ec_meth, ec_sign, sign_setup, ec_do_sign);
}

/*
 * ca_key - (smtpd) the key to use with certificate number idx, cert: its
 * public key, with private operations done by ca; NULL (with a reason in
 * err) for a key type ca cannot serve.
 */
EVP_PKEY *
ca_key(const X509 *cert, size_t idx, char *err, size_t errlen)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert), *key = NULL;
	RSA *rsa;
	EC_KEY *ec;

	if (pub == NULL || ca.rsa_meth == NULL) {
		snprintf(err, errlen, "no public key to sign for");
		return NULL;
	}
	key = EVP_PKEY_new();
	if (key == NULL)
		fatal("out of memory");
	/* the method is set before the key is assigned: OpenSSL then keeps
	 * it a legacy key and calls the method */
	if ((rsa = EVP_PKEY_get1_RSA(pub)) != NULL) {
		RSA_set_method(rsa, ca.rsa_meth);
		RSA_set_ex_data(rsa, ca.ex_rsa, (void *)(uintptr_t)idx);
		if (EVP_PKEY_assign_RSA(key, rsa) == 1)
			return key;
		RSA_free(rsa);
	} else if ((ec = EVP_PKEY_get1_EC_KEY(pub)) != NULL) {
		EC_KEY_set_method(ec, ca.ec_meth);
		EC_KEY_set_ex_data(ec, ca.ex_ec, (void *)(uintptr_t)idx);
		if (EVP_PKEY_assign_EC_KEY(key, ec) == 1)
			return key;
		EC_KEY_free(ec);
	}
	ERR_clear_error();
	EVP_PKEY_free(key);
	snprintf(err, errlen, "only RSA and ECDSA keys can be kept by ca");
	return NULL;
}
