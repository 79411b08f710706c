/*
 * number.c - exact conversions between decimal text and doubles, without libc.
 *
 * Both directions start from a fast double-arithmetic estimate and then settle the last digit
 * (or the last bit) with one exact primitive: comparing D * 10^k with M * 2^E as big integers.
 * That makes reading correctly rounded (for up to 19 significant digits) and writing the
 * shortest text that reads back as the same double, like JavaScript's number printing.
 */
#include "smcp_internal.h"

#define WORDS 160 /* 5120 bits: 10^(MAX_EXACT_DIGITS + 343) and 2^1100 factors fit */
#define MAX_EXACT_DIGITS 400 /* digits beyond this in a literal are ignored */
#define DBL_MAX 1.7976931348623157e308
#define DBL_MIN_NORMAL 2.2250738585072014e-308
#define DBL_MIN_SUB 4.9406564584124654e-324

typedef struct bignum {
    uint32_t w[WORDS]; /* little-endian 32-bit limbs */
    int n;             /* limbs in use */
} bignum;

static void bn_set(bignum *b, uint64_t v) {
    b->w[0] = (uint32_t)v;
    b->w[1] = (uint32_t)(v >> 32);
    b->n = b->w[1] ? 2 : (b->w[0] ? 1 : 0);
}

static void bn_mul_small(bignum *b, uint32_t m) {
    uint64_t carry = 0;
    for (int i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->w[i] * m + carry;
        b->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry != 0 && b->n < WORDS) {
        b->w[b->n++] = (uint32_t)carry;
    }
}

static void bn_mul_pow10(bignum *b, int k) {
    for (; k >= 9; k -= 9) {
        bn_mul_small(b, 1000000000u);
    }
    static const uint32_t small[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                     100000000};
    bn_mul_small(b, small[k]);
}

static void bn_shl(bignum *b, int bits) {
    if (b->n == 0) {
        return;
    }
    int words = bits / 32, rest = bits % 32;
    if (b->n + words + 1 > WORDS) {
        __builtin_trap(); /* unreachable: callers keep exponents within double range */
    }
    b->w[b->n + words] = 0;
    for (int i = b->n - 1; i >= 0; i--) {
        uint64_t v = (uint64_t)b->w[i] << rest;
        b->w[i + words + 1] |= (uint32_t)(v >> 32);
        b->w[i + words] = (uint32_t)v;
    }
    for (int i = 0; i < words; i++) {
        b->w[i] = 0;
    }
    b->n += words + 1;
    while (b->n > 0 && b->w[b->n - 1] == 0) {
        b->n--;
    }
}

static int bn_cmp(const bignum *a, const bignum *b) {
    if (a->n != b->n) {
        return a->n < b->n ? -1 : 1;
    }
    for (int i = a->n - 1; i >= 0; i--) {
        if (a->w[i] != b->w[i]) {
            return a->w[i] < b->w[i] ? -1 : 1;
        }
    }
    return 0;
}

/* sign(D * 10^k - M * 2^E), exactly. */
static int cmp_big(const bignum *d, int k, uint64_t m, int e) {
    bignum left = *d, right;
    bn_set(&right, m);
    if (k > 0) {
        bn_mul_pow10(&left, k);
    } else if (k < 0) {
        bn_mul_pow10(&right, -k);
    }
    if (e > 0) {
        bn_shl(&right, e);
    } else if (e < 0) {
        bn_shl(&left, -e);
    }
    return bn_cmp(&left, &right);
}

static int cmp_dec_bin(uint64_t d, int k, uint64_t m, int e) {
    bignum b;
    bn_set(&b, d);
    return cmp_big(&b, k, m, e);
}

/* A finite positive double as M * 2^E with M < 2^53 (M < 2^52 for subnormals). */
static uint64_t decompose(double v, int *e) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int biased = (int)((bits >> 52) & 0x7FF);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    if (biased == 0) {
        *e = -1074;
        return frac;
    }
    *e = biased - 1075;
    return frac | ((uint64_t)1 << 52);
}

/* Is D * 10^k inside v's rounding interval (so that reading it gives back v)? Returns 0 if
 * yes, 1 if it lies above, -1 below. Ties go to the double with the even significand. */
static int interval_side(const bignum *d, int k, double v) {
    int e;
    uint64_t m = decompose(v, &e);
    bool even = (m & 1) == 0;
    int up = cmp_big(d, k, 2 * m + 1, e - 1);
    if (up > 0 || (up == 0 && !even)) {
        return 1;
    }
    /* Below a power of two the gap to the next smaller double is half as wide. */
    int lo = (m == (uint64_t)1 << 52 && e > -1074) ? cmp_big(d, k, 4 * m - 1, e - 2)
                                                   : cmp_big(d, k, 2 * m - 1, e - 1);
    if (lo < 0 || (lo == 0 && !even)) {
        return -1;
    }
    return 0;
}

static double step(double v, int dir) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits = dir > 0 ? bits + 1 : bits - 1; /* positive doubles order like their bit patterns */
    memcpy(&v, &bits, sizeof v);
    return v;
}

static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* v * 10^s in double arithmetic (a few units in the last place off for large |s|). */
static double scale10(double v, int s) {
    while (s > 22) {
        v *= 1e22;
        s -= 22;
    }
    while (s < -22) {
        v /= 1e22;
        s += 22;
    }
    return s >= 0 ? v * P10[s] : v / P10[-s];
}

double smcp__parse_number(const char *s, size_t n) {
    /* The literal is D * 10^k with D all its digits (leading zeros dropped), k the exponent
     * minus the number of fraction digits. D's first 19 digits give the estimate; up to
     * MAX_EXACT_DIGITS of them settle the result exactly. */
    bool neg = s[0] == '-';
    uint64_t d19 = 0;
    bignum big;
    bn_set(&big, 0);
    int sig = 0, frac = 0, exp10 = 0;
    size_t i = neg;
    bool dot = false;
    for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.') {
            dot = true;
            continue;
        }
        uint32_t digit = (uint32_t)(s[i] - '0');
        frac += dot;
        if (sig == 0 && digit == 0) {
            continue;
        }
        if (sig < 19) {
            d19 = d19 * 10 + digit;
        }
        if (sig < MAX_EXACT_DIGITS) {
            bn_mul_small(&big, 10);
            if (big.n == 0 && digit != 0) {
                big.n = 1;
                big.w[0] = 0;
            }
            uint64_t carry = digit;
            for (int w = 0; w < big.n && carry != 0; w++) {
                uint64_t t = (uint64_t)big.w[w] + carry;
                big.w[w] = (uint32_t)t;
                carry = t >> 32;
            }
            if (carry != 0) {
                big.w[big.n++] = (uint32_t)carry;
            }
        }
        sig++;
    }
    if (i < n) {
        i++;
        bool eneg = s[i] == '-';
        i += (s[i] == '-' || s[i] == '+');
        for (; i < n; i++) {
            exp10 = exp10 < 100000 ? exp10 * 10 + (s[i] - '0') : exp10;
        }
        exp10 = eneg ? -exp10 : exp10;
    }
    int k = exp10 - frac; /* value = D * 10^k */
    double v = 0;
    if (sig != 0 && k + sig > 309) {
        v = __builtin_inf();
    } else if (sig != 0 && k + sig >= -324) {
        int k19 = k + (sig > 19 ? sig - 19 : 0);
        int kbig = k + (sig > MAX_EXACT_DIGITS ? sig - MAX_EXACT_DIGITS : 0);
        v = scale10((double)d19, k19);
        /* Start the correction from a finite nonzero double; it decides about 0 and inf. */
        v = v - v != 0 ? DBL_MAX : (v == 0 ? DBL_MIN_SUB : v);
        for (int guard = 0; guard < 64; guard++) {
            int side = interval_side(&big, kbig, v);
            if (side == 0) {
                break;
            }
            if (side > 0 && v == DBL_MAX) {
                v = __builtin_inf();
                break;
            }
            if (side < 0 && v == DBL_MIN_SUB) {
                v = cmp_big(&big, kbig, 1, -1075) > 0 ? v : 0; /* halfway ties go to 0 */
                break;
            }
            v = step(v, side);
        }
    }
    return neg ? -v : v;
}

/* v > 0 rounded to p significant digits, ties to even: returns q with 10^(p-1) <= q < 10^p
 * and sets *k so that the rounded value is q * 10^k. */
static uint64_t round_digits(double v, int p, int *k) {
    int e = 0; /* decimal exponent estimate: 10^e <= v < 10^(e+1) */
    for (double t = v; t >= 10; t /= 10) {
        e++;
    }
    for (double t = v; t < 1; t *= 10) {
        e--;
    }
    uint64_t lo_q = 1;
    for (int i = 1; i < p; i++) {
        lo_q *= 10;
    }
    int me;
    uint64_t m = decompose(v, &me);
    for (int guard = 0; guard < 4; guard++) {
        *k = e - (p - 1);
        double est = scale10(v, -*k);
        uint64_t q = est < 1 ? 0 : (uint64_t)est;
        /* The answer is the smallest q with (q + 1/2) * 10^k >= v. Bracket it around the
         * estimate with doubling steps, then bisect; each probe is one exact comparison. */
        uint64_t lo, hi, stride = 1;
        if (cmp_dec_bin(2 * q + 1, *k, m, me + 1) >= 0) {
            hi = q;
            lo = q;
            while (lo > 0 && cmp_dec_bin(2 * lo + 1, *k, m, me + 1) >= 0) {
                hi = lo;
                lo = lo > stride ? lo - stride : 0;
                stride *= 2;
            }
        } else {
            lo = q;
            hi = q + 1;
            while (cmp_dec_bin(2 * hi + 1, *k, m, me + 1) < 0) {
                lo = hi;
                hi += stride;
                stride *= 2;
            }
        }
        while (hi - lo > 1) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (cmp_dec_bin(2 * mid + 1, *k, m, me + 1) >= 0) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        if (lo == 0 && cmp_dec_bin(1, *k, m, me + 1) >= 0) {
            hi = 0;
        }
        if (cmp_dec_bin(2 * hi + 1, *k, m, me + 1) == 0 && (hi & 1)) {
            hi++; /* exactly halfway: round to even */
        }
        if (hi >= lo_q * 10) {
            e++;
        } else if (hi < lo_q) {
            e--;
        } else {
            return hi;
        }
    }
    *k = e - (p - 1);
    return lo_q;
}

bool smcp_buf_put_double(smcp_buf *b, double v) {
    if (v != v || v - v != 0) { /* NaN or an infinity: JSON has no spelling for them */
        return smcp_buf_putn(b, "null", 4);
    }
    if (v == 0) {
        return smcp_buf_putc(b, '0');
    }
    if (v < 0) {
        smcp_buf_putc(b, '-');
        v = -v;
    }
    int k = 0;
    uint64_t q = 0;
    /* Any 15-digit decimal survives a round trip through a normal double, so shorter forms
     * are found by stripping zeros; subnormals have fewer bits and may need fewer digits. */
    int p = v < DBL_MIN_NORMAL ? 1 : 15;
    for (; p <= 17; p++) {
        q = round_digits(v, p, &k);
        bignum qb;
        bn_set(&qb, q);
        if (p == 17 || interval_side(&qb, k, v) == 0) {
            break;
        }
    }
    char dig[17];
    for (int i = p - 1; i >= 0; i--) {
        dig[i] = (char)('0' + q % 10);
        q /= 10;
    }
    int nd = p;
    while (nd > 1 && dig[nd - 1] == '0') {
        nd--;
    }
    int e = k + p - 1; /* decimal exponent of the first digit */
    if (e >= -6 && e < 21) {
        if (e < 0) {
            smcp_buf_putn(b, "0.000000", (size_t)(1 - e));
            return smcp_buf_putn(b, dig, (size_t)nd);
        }
        smcp_buf_putn(b, dig, (size_t)(e + 1 < nd ? e + 1 : nd));
        for (int i = nd; i < e + 1; i++) {
            smcp_buf_putc(b, '0');
        }
        if (nd > e + 1) {
            smcp_buf_putc(b, '.');
            smcp_buf_putn(b, dig + e + 1, (size_t)(nd - e - 1));
        }
        return !b->failed;
    }
    smcp_buf_putc(b, dig[0]);
    if (nd > 1) {
        smcp_buf_putc(b, '.');
        smcp_buf_putn(b, dig + 1, (size_t)(nd - 1));
    }
    smcp_buf_putn(b, e < 0 ? "e-" : "e+", 2);
    return smcp_buf_put_int(b, e < 0 ? -e : e);
}
