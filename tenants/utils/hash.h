/* Message digests for the utils tenant. */
#ifndef UTILS_HASH_H
#define UTILS_HASH_H

#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t n, uint8_t out[32]);
void sha1(const void *data, size_t n, uint8_t out[20]);
void md5(const void *data, size_t n, uint8_t out[16]);

/* Lower-case hex of n bytes into out (2 * n + 1 bytes, NUL-terminated). */
void hex_encode(const uint8_t *bytes, size_t n, char *out);

#endif
