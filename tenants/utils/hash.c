/*
 * hash.c - SHA-1 (FIPS 180-4) and MD5 (RFC 1321), one-shot; SHA-256 is the SDK's.
 *
 * Both are Merkle-Damgard hashes over 64-byte blocks with the same padding (0x80, zeros,
 * the bit length in 8 bytes), differing in the block function, the byte order of words and
 * of the length. SHA-1 and MD5 are here for checksums and interoperability, not security.
 */
#include "hash.h"

#include "smcp.h"

typedef void (*block_fn)(uint32_t *state, const uint8_t *block);

static uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static uint32_t load_be(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t load_le(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void sha1_block(uint32_t *h, const uint8_t *block) {
    uint32_t w[80];
    for (int t = 0; t < 16; t++) {
        w[t] = load_be(block + 4 * t);
    }
    for (int t = 16; t < 80; t++) {
        w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* floor(|sin(i + 1)| * 2^32), RFC 1321 section 3.4. */
static const uint32_t KMD5[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
};

static void md5_block(uint32_t *h, const uint8_t *block) {
    static const uint8_t shift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23},
                                        {6, 10, 15, 21}};
    uint32_t m[16];
    for (int i = 0; i < 16; i++) {
        m[i] = load_le(block + 4 * i);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        int round = i / 16;
        uint32_t f;
        int g;
        if (round == 0) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (round == 1) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (round == 2) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        uint32_t tmp = d;
        d = c;
        c = b;
        b = b + rotl(a + f + KMD5[i] + m[g], shift[round][i % 4]);
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

/* Runs the block function over data plus Merkle-Damgard padding. */
static void md_run(const uint8_t *data, size_t n, uint32_t *state, block_fn block, bool be) {
    size_t full = n / 64;
    for (size_t i = 0; i < full; i++) {
        block(state, data + 64 * i);
    }
    uint8_t tail[128];
    size_t rest = n - 64 * full;
    memset(tail, 0, sizeof tail);
    memcpy(tail, data + 64 * full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) {
        size_t at = be ? tail_len - 1 - (size_t)i : tail_len - 8 + (size_t)i;
        tail[at] = (uint8_t)(bits >> (8 * i));
    }
    for (size_t off = 0; off < tail_len; off += 64) {
        block(state, tail + off);
    }
}

static void store_words(const uint32_t *state, size_t words, uint8_t *out, bool be) {
    for (size_t i = 0; i < words; i++) {
        for (int b = 0; b < 4; b++) {
            out[4 * i + (size_t)b] = (uint8_t)(state[i] >> (be ? 24 - 8 * b : 8 * b));
        }
    }
}

void sha256(const void *data, size_t n, uint8_t out[32]) { smcp_sha256(data, n, out); }

void sha1(const void *data, size_t n, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    md_run(data, n, h, sha1_block, true);
    store_words(h, 5, out, true);
}

void md5(const void *data, size_t n, uint8_t out[16]) {
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    md_run(data, n, h, md5_block, false);
    store_words(h, 4, out, false);
}

void hex_encode(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
