/*
 * ca.h - the TLS private keys in a small process beside the smtpd, which
 * asks it for each private-key operation of a handshake (see ca.c).
 */
#ifndef TERN_CA_H
#define TERN_CA_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct tls_material;

/* ca_main - the ca process: private-key operations with the keys of m
 * (freed, cleansed, once parsed) on fd until it closes, then exit */
_Noreturn void ca_main(struct tls_material *m, int fd);

/* ca_client_start - (smtpd) private-key operations go to ca on fd */
void ca_client_start(int fd);
/* ca_key - (smtpd) the public key of cert, number idx, with its private
 * operations done by ca; NULL with a reason in err */
EVP_PKEY *ca_key(const X509 *cert, size_t idx, char *err, size_t errlen);

#endif
