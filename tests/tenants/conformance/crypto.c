/* crypto.c - see crypto.h. HMAC from RFC 2104 over the SDK's SHA-256; base64url from RFC 4648. */
#include "crypto.h"

#include "smcp.h" /* SHA-256, memcpy and memset from the SDK */

void hmac_sha256(const void *key, size_t key_len, const void *m1, size_t n1, const void *m2,
                 size_t n2, uint8_t out[SHA256_LEN]) {
    uint8_t k[64];
    memset(k, 0, sizeof k);
    if (key_len > 64) {
        smcp_sha256(key, key_len, k);
    } else {
        memcpy(k, key, key_len);
    }
    uint8_t pad[64];
    for (int i = 0; i < 64; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    uint8_t inner[SHA256_LEN];
    smcp_sha256_ctx s;
    smcp_sha256_init(&s);
    smcp_sha256_update(&s, pad, 64);
    smcp_sha256_update(&s, m1, n1);
    smcp_sha256_update(&s, m2, n2);
    smcp_sha256_final(&s, inner);
    for (int i = 0; i < 64; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    smcp_sha256_init(&s);
    smcp_sha256_update(&s, pad, 64);
    smcp_sha256_update(&s, inner, sizeof inner);
    smcp_sha256_final(&s, out);
}

bool equal_ct(const uint8_t *a, const uint8_t *b, size_t n) {
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff |= (uint8_t)(a[i] ^ b[i]);
    }
    return diff == 0;
}

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64url_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= in[i + 2];
        }
        out[o++] = ALPHABET[(v >> 18) & 63];
        out[o++] = ALPHABET[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = ALPHABET[(v >> 6) & 63];
        }
        if (i + 2 < n) {
            out[o++] = ALPHABET[v & 63];
        }
    }
    return o;
}

static int sextet(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

long b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1) > cap) {
        return -1;
    }
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = sextet(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc == 0 ? (long)o : -1; /* leftover bits must be zero */
}
