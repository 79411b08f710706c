/* crypto.h - HMAC-SHA-256 and unpadded base64url: what sealing a requestState needs (SHA-256
 * itself comes from the SDK, smcp_sha256). */
#ifndef CONFORMANCE_CRYPTO_H
#define CONFORMANCE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

/* RFC 2104 HMAC with SHA-256 over the concatenation of two messages (so callers need not
 * join "header.payload" first). */
void hmac_sha256(const void *key, size_t key_len, const void *m1, size_t n1, const void *m2,
                 size_t n2, uint8_t out[SHA256_LEN]);

/* True when the n bytes at a and b are equal; time independent of where they differ. */
bool equal_ct(const uint8_t *a, const uint8_t *b, size_t n);

/* base64url (RFC 4648 section 5) without padding. Encoding writes 4 * ceil(n / 3) bytes at
 * most and returns the count. Decoding returns the byte count, or -1 for a character outside
 * the alphabet, a length of 1 mod 4, non-zero trailing bits (a non-canonical spelling), or
 * when the result would not fit in cap bytes. */
size_t b64url_encode(const uint8_t *in, size_t n, char *out);
long b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
