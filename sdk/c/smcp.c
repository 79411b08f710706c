/*
 * smcp.c - arena, libc subset, UTF-8, growable buffers, dates and the host imports.
 *
 * The arena is a bump allocator over linear memory from __heap_base up; it grows with
 * memory.grow and never shrinks. smcp_alloc called while no smcp_handle is running starts a
 * new message and empties the arena, so each request starts from the same heap and the
 * memory high-water mark is that of the largest request so far.
 */
#include "smcp_internal.h"

#define PAGE 65536u
#define GROW_CHUNK_PAGES 16u /* grow 1 MiB at a time to keep memory.grow calls rare */

extern unsigned char __heap_base;

static uint32_t arena_base;  /* first usable byte, 8-aligned */
static uint32_t arena_top;   /* next free byte */
static uint32_t last_block;  /* start of the newest block, for in-place growth */
static bool arena_oom;       /* an allocation failed during this message */
static bool in_handle;

static uint64_t memory_bytes(void) {
    return (uint64_t)__builtin_wasm_memory_size(0) * PAGE;
}

static void arena_reset(void) {
    if (arena_base == 0) {
        arena_base = ((uint32_t)(uintptr_t)&__heap_base + 7u) & ~7u;
    }
    arena_top = arena_base;
    last_block = 0;
    arena_oom = false;
}

/* Makes [arena_top, arena_top + need) addressable. */
static bool ensure_room(uint64_t need) {
    uint64_t want = (uint64_t)arena_top + need;
    uint64_t have = memory_bytes();
    if (want <= have) {
        return true;
    }
    if (want > 0xFFFFFFF8u) {
        return false;
    }
    uint64_t pages = (want - have + PAGE - 1) / PAGE;
    uint64_t chunk = pages < GROW_CHUNK_PAGES ? GROW_CHUNK_PAGES : pages;
    /* A chunk may cross the instance's memory limit where the exact need does not. */
    if (__builtin_wasm_memory_grow(0, (size_t)chunk) == (size_t)-1 &&
        __builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) {
        return false;
    }
    return true;
}

void *smcp__alloc_raw(size_t n) {
    if (arena_base == 0) {
        arena_reset();
    }
    uint64_t need = ((uint64_t)n + 7u) & ~(uint64_t)7u;
    if (need == 0) {
        need = 8;
    }
    if (!ensure_room(need)) {
        arena_oom = true;
        return NULL;
    }
    last_block = arena_top;
    arena_top += (uint32_t)need;
    return (void *)(uintptr_t)last_block;
}

void *smcp_arena_alloc(size_t n) {
    void *p = smcp__alloc_raw(n);
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}

void *smcp__realloc(void *p, size_t old, size_t n) {
    if (p != NULL && (uint32_t)(uintptr_t)p == last_block && last_block != 0) {
        uint64_t need = ((uint64_t)n + 7u) & ~(uint64_t)7u;
        arena_top = last_block;
        if (ensure_room(need)) {
            arena_top = last_block + (uint32_t)need;
            return p;
        }
        arena_top = last_block + (uint32_t)((old + 7u) & ~(size_t)7u);
        arena_oom = true;
        return NULL;
    }
    void *q = smcp__alloc_raw(n);
    if (q != NULL && p != NULL) {
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

void smcp__release(void *p) {
    if (p != NULL && (uint32_t)(uintptr_t)p == last_block && last_block != 0) {
        arena_top = last_block;
        last_block = 0;
    }
}

bool smcp__oom(void) { return arena_oom; }

size_t smcp_arena_used(void) { return arena_base ? arena_top - arena_base : 0; }

void smcp__enter_handle(size_t len) {
    /* An empty message comes without an smcp_alloc call (ABI 2.5): start the message here. */
    if (len == 0) {
        arena_reset();
    }
    in_handle = true;
}

void smcp__leave_handle(void) { in_handle = false; }

/* Export: the host's allocator. Called outside smcp_handle it begins a new message. The block
 * has one hidden extra byte set to NUL, so host-written strings are NUL-terminated. */
__attribute__((export_name("smcp_alloc"))) int32_t smcp_alloc(int32_t len) {
    if (!in_handle) {
        arena_reset();
    }
    if (len < 0) {
        return 0;
    }
    char *p = smcp__alloc_raw((size_t)len + 1);
    if (p == NULL) {
        return 0;
    }
    p[len] = '\0';
    return (int32_t)(uintptr_t)p;
}

char *smcp_strndup(const char *s, size_t n) {
    char *p = smcp__alloc_raw(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *smcp_strdup(const char *s) { return smcp_strndup(s, strlen(s)); }

bool smcp_streq(const char *s, const char *t) {
    return s != NULL && t != NULL && strcmp(s, t) == 0;
}

/* --- libc subset. The build enables bulk memory, so these builtins become memory.copy and
 * memory.fill instructions rather than calls back into these functions. ------------------ */

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    return __builtin_memcpy(dst, src, n);
}

void *memmove(void *dst, const void *src, size_t n) { return __builtin_memmove(dst, src, n); }

void *memset(void *dst, int c, size_t n) { return __builtin_memset(dst, c, n); }

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *p = a, *q = b;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != q[i]) {
            return p[i] < q[i] ? -1 : 1;
        }
    }
    return 0;
}

size_t strlen(const char *s) {
    const char *p = s;
    while (*p) {
        p++;
    }
    return (size_t)(p - s);
}

int strcmp(const char *a, const char *b) {
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
    for (; n > 0; n--, a++, b++) {
        if (*a != *b || *a == '\0') {
            return (unsigned char)*a - (unsigned char)*b;
        }
    }
    return 0;
}

/* --- UTF-8 ------------------------------------------------------------------------------------ */

size_t smcp__utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80u) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

bool smcp_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = smcp__utf8_seq(p + i, n - i);
        if (k == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

/* --- buffers ---------------------------------------------------------------------------------- */

smcp_buf *smcp_buf_new(size_t cap_hint) {
    smcp_buf *b = smcp_arena_alloc(sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->cap = cap_hint < 16 ? 16 : cap_hint;
    b->data = smcp__alloc_raw(b->cap);
    if (b->data == NULL) {
        b->cap = 0;
        b->failed = true;
    }
    return b;
}

void smcp_buf_reset(smcp_buf *b) {
    b->len = 0;
    b->failed = b->data == NULL;
    b->after_key = false;
    b->depth = 0;
}

bool smcp__reserve(smcp_buf *b, size_t n) {
    if (b->failed) {
        return false;
    }
    if (b->cap - b->len > n) { /* keep one spare byte for smcp_buf_cstr's NUL */
        return true;
    }
    size_t want = b->cap * 2;
    if (want < b->len + n + 1) {
        want = b->len + n + 1;
    }
    char *p = smcp__realloc(b->data, b->cap, want);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = want;
    return true;
}

bool smcp_buf_putn(smcp_buf *b, const char *s, size_t n) {
    if (!smcp__reserve(b, n)) {
        return false;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return true;
}

bool smcp_buf_puts(smcp_buf *b, const char *s) { return smcp_buf_putn(b, s, strlen(s)); }

bool smcp_buf_putc(smcp_buf *b, char c) { return smcp_buf_putn(b, &c, 1); }

bool smcp_buf_put_uint(smcp_buf *b, uint64_t v) {
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return smcp_buf_putn(b, tmp + i, sizeof tmp - i);
}

bool smcp_buf_put_int(smcp_buf *b, int64_t v) {
    if (v < 0) {
        smcp_buf_putc(b, '-');
        return smcp_buf_put_uint(b, (uint64_t)0 - (uint64_t)v);
    }
    return smcp_buf_put_uint(b, (uint64_t)v);
}

/* Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras counted from
 * 0000-03-01 so that each era (and each year within it) ends with its leap day. */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void put_digits(smcp_buf *b, int64_t v, int width, char after) {
    char tmp[5];
    for (int i = width - 1; i >= 0; i--) {
        tmp[i] = (char)('0' + v % 10);
        v /= 10;
    }
    tmp[width] = after;
    smcp_buf_putn(b, tmp, (size_t)width + (after != 0));
}

bool smcp_buf_put_time(smcp_buf *b, int64_t unix_ms) {
    int64_t days = unix_ms >= 0 ? unix_ms / 86400000 : -((-(unix_ms + 1)) / 86400000) - 1;
    int64_t rem = unix_ms - days * 86400000;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        return smcp_buf_puts(b, "(date out of range)");
    }
    put_digits(b, y, 4, '-');
    put_digits(b, m, 2, '-');
    put_digits(b, d, 2, 'T');
    put_digits(b, rem / 3600000, 2, ':');
    put_digits(b, rem / 60000 % 60, 2, ':');
    put_digits(b, rem / 1000 % 60, 2, '.');
    put_digits(b, rem % 1000, 3, 'Z');
    return !b->failed;
}

const char *smcp_buf_cstr(smcp_buf *b) {
    if (!smcp__reserve(b, 0)) {
        return NULL;
    }
    b->data[b->len] = '\0';
    return b->data;
}

/* --- host imports ----------------------------------------------------------------------------- */

#define SMCP_IMPORT(name) __attribute__((import_module("smcp"), import_name(name)))

SMCP_IMPORT("log") void smcp__host_log(const char *lvl, size_t lvl_len, const char *msg,
                                       size_t msg_len);
SMCP_IMPORT("config_get") int64_t smcp__host_config_get(const char *key, size_t key_len);
SMCP_IMPORT("kv_get") int64_t smcp__host_kv_get(const char *key, size_t key_len);
SMCP_IMPORT("kv_set") int32_t smcp__host_kv_set(const char *key, size_t key_len,
                                                const char *val, size_t val_len);
SMCP_IMPORT("kv_delete") int32_t smcp__host_kv_delete(const char *key, size_t key_len);
SMCP_IMPORT("kv_list") int64_t smcp__host_kv_list(const char *prefix, size_t prefix_len);
SMCP_IMPORT("notify") void smcp__host_notify(const char *msg, size_t msg_len);
SMCP_IMPORT("time_now_ms") int64_t smcp__host_time_now_ms(void);
SMCP_IMPORT("sleep_ms") void smcp__host_sleep_ms(int64_t ms);
/* Added after smcp-v1 first shipped. The linker imports only what a module calls, so modules
 * that use none of these still load on boxes that predate them. */
SMCP_IMPORT("kv_cas") int32_t smcp__host_kv_cas(const char *key, size_t key_len,
                                                const char *exp, int32_t exp_len,
                                                const char *val, size_t val_len);
SMCP_IMPORT("kv_incr") int32_t smcp__host_kv_incr(const char *key, size_t key_len, int64_t delta,
                                                  int64_t *out);
SMCP_IMPORT("random_bytes") int32_t smcp__host_random_bytes(void *buf, size_t len);
SMCP_IMPORT("blob_open") int32_t smcp__host_blob_open(const char *name, size_t name_len,
                                                      int32_t mode, const char *type,
                                                      size_t type_len);
SMCP_IMPORT("blob_read") int32_t smcp__host_blob_read(int32_t handle, void *buf, size_t len);
SMCP_IMPORT("blob_write") int32_t smcp__host_blob_write(int32_t handle, const void *buf,
                                                        size_t len);
SMCP_IMPORT("blob_close") int32_t smcp__host_blob_close(int32_t handle);
SMCP_IMPORT("blob_stat") int64_t smcp__host_blob_stat(const char *name, size_t name_len);
SMCP_IMPORT("blob_list") int64_t smcp__host_blob_list(const char *prefix, size_t prefix_len);
SMCP_IMPORT("blob_delete") int32_t smcp__host_blob_delete(const char *name, size_t name_len);

/* Unpacks a host-allocated (ptr << 32 | len) result; NULL for -1 ("absent"). A host that
 * points outside memory is broken beyond recovery, so that traps. */
static const char *unpack(int64_t packed, size_t *len) {
    if (packed == -1) {
        if (len != NULL) {
            *len = 0;
        }
        return NULL;
    }
    uint64_t bits = (uint64_t)packed;
    uint32_t ptr = (uint32_t)(bits >> 32);
    uint32_t n = (uint32_t)bits;
    if (len != NULL) {
        *len = n;
    }
    if (n == 0) {
        return "";
    }
    if ((uint64_t)ptr + n + 1 > memory_bytes()) {
        __builtin_trap();
    }
    char *p = (char *)(uintptr_t)ptr;
    p[n] = '\0'; /* smcp_alloc reserved this byte */
    return p;
}

void smcp_log(const char *level, const char *message) {
    smcp__host_log(level, strlen(level), message, strlen(message));
}

const char *smcp_config_get(const char *key, size_t *len) {
    return unpack(smcp__host_config_get(key, strlen(key)), len);
}

const char *smcp_kv_get(const char *key, size_t *len) {
    return unpack(smcp__host_kv_get(key, strlen(key)), len);
}

int smcp_kv_set(const char *key, const char *value, size_t len) {
    return smcp__host_kv_set(key, strlen(key), value, len);
}

int smcp_kv_delete(const char *key) { return smcp__host_kv_delete(key, strlen(key)); }

int smcp_kv_cas(const char *key, const char *expected, size_t expected_len, const char *value,
                size_t len) {
    /* -1 as the expected length means "only if absent" (docs/abi.md 2.3). */
    int32_t exp_len = expected == NULL ? -1 : (int32_t)expected_len;
    return smcp__host_kv_cas(key, strlen(key), expected, exp_len, value, len);
}

int smcp_kv_incr(const char *key, int64_t delta, int64_t *out) {
    int64_t sum = 0;
    int rc = smcp__host_kv_incr(key, strlen(key), delta, &sum);
    if (rc == SMCP_KV_OK && out != NULL) {
        *out = sum;
    }
    return rc;
}

int smcp_random_bytes(void *buf, size_t len) { return smcp__host_random_bytes(buf, len); }

const smcp_json *smcp_kv_list(const char *prefix) {
    size_t n;
    const char *text = unpack(smcp__host_kv_list(prefix, strlen(prefix)), &n);
    if (text == NULL) {
        return NULL;
    }
    const smcp_json *v = smcp_json_parse(text, n, NULL);
    return (v != NULL && v->type == SMCP_JSON_ARRAY) ? v : NULL;
}

const char *smcp_kv_strerror(int rc) {
    switch (rc) {
    case SMCP_KV_OK:
        return "ok";
    case SMCP_KV_QUOTA:
        return "the tenant's storage quota is exhausted; delete data or ask the admin for more";
    case SMCP_KV_FAILURE:
        return "the box could not store the change; try again later";
    case SMCP_KV_NOT_INTEGER:
        return "the stored value is not a decimal integer, or the sum overflows; nothing was "
               "written";
    default:
        return "unknown key-value store error";
    }
}

int smcp_blob_open(const char *name, int mode, const char *content_type) {
    const char *type = content_type == NULL ? "" : content_type;
    return smcp__host_blob_open(name, strlen(name), mode, type, strlen(type));
}

int smcp_blob_read(int handle, void *buf, size_t len) {
    return smcp__host_blob_read(handle, buf, len);
}

int smcp_blob_write(int handle, const void *buf, size_t len) {
    return smcp__host_blob_write(handle, buf, len);
}

int smcp_blob_close(int handle) { return smcp__host_blob_close(handle); }

/* A JSON answer of blob_stat or blob_list; NULL for any negative status. */
static const smcp_json *blob_json(int64_t packed, smcp_json_type type) {
    if (packed < 0) {
        return NULL;
    }
    size_t n;
    const char *text = unpack(packed, &n);
    const smcp_json *v = smcp_json_parse(text, n, NULL);
    return (v != NULL && v->type == type) ? v : NULL;
}

const smcp_json *smcp_blob_stat(const char *name) {
    return blob_json(smcp__host_blob_stat(name, strlen(name)), SMCP_JSON_OBJECT);
}

const smcp_json *smcp_blob_list(const char *prefix) {
    return blob_json(smcp__host_blob_list(prefix, strlen(prefix)), SMCP_JSON_ARRAY);
}

int smcp_blob_delete(const char *name) { return smcp__host_blob_delete(name, strlen(name)); }

const char *smcp_blob_strerror(int rc) {
    switch (rc) {
    case SMCP_BLOB_QUOTA:
        return "a blob quota would be exceeded; delete blobs or ask the admin for more";
    case SMCP_BLOB_FAILURE:
        return "the box could not read or store the blob; try again later";
    case SMCP_BLOB_NOT_FOUND:
        return "no blob by that name";
    case SMCP_BLOB_BAD_NAME:
        return "the blob name or content type is not allowed";
    case SMCP_BLOB_BAD_HANDLE:
        return "not an open blob handle";
    default:
        return rc >= 0 ? "ok" : "unknown blob error";
    }
}

void smcp_notify(const char *json, size_t len) { smcp__host_notify(json, len); }

int64_t smcp_time_now_ms(void) { return smcp__host_time_now_ms(); }
void smcp_sleep_ms(int64_t ms) { smcp__host_sleep_ms(ms); }
