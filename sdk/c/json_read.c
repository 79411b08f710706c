/*
 * json_read.c - the SDK's JSON reader (RFC 8259, strict) and its accessors.
 *
 * The reader builds a tree in the arena and keeps every value's source span, so that ids and
 * progress tokens can be echoed byte for byte. It is recursive with an explicit depth limit,
 * which bounds its use of the (fixed-size) wasm stack.
 */
#include "smcp_internal.h"

/* --- reader ----------------------------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t n;
    size_t i;
    int depth;
    const char *what; /* first error, NULL while none */
    size_t at;
} parser;

static void fail(parser *p, const char *what) {
    if (p->what == NULL) {
        p->what = what;
        p->at = p->i;
    }
}

static void skip_ws(parser *p) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        p->i++;
    }
}

static smcp_json *new_node(parser *p, smcp_json_type type) {
    smcp_json *v = smcp_arena_alloc(sizeof *v);
    if (v == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    v->type = type;
    v->raw = p->s + p->i;
    return v;
}

static int hex4(const char *s) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string literal at p->i (which is '"'); the unescaped text goes to *out and *out_len.
 * Unescaping never lengthens text, so the raw length bounds the output. */
static bool parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->i;
    size_t end = start;
    while (end < p->n && p->s[end] != '"') {
        end += (p->s[end] == '\\') ? 2 : 1;
    }
    if (end >= p->n) {
        p->i = p->n;
        fail(p, "unterminated string");
        return false;
    }
    char *buf = smcp__alloc_raw(end - start + 1);
    if (buf == NULL) {
        fail(p, "out of memory");
        return false;
    }
    size_t o = 0;
    while (p->i < end) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) {
            fail(p, "control character in string (escape it)");
            return false;
        }
        if (c >= 0x80) {
            size_t k = smcp__utf8_seq((const unsigned char *)p->s + p->i, end - p->i);
            if (k == 0) {
                fail(p, "invalid UTF-8 in string");
                return false;
            }
            memcpy(buf + o, p->s + p->i, k);
            o += k;
            p->i += k;
            continue;
        }
        if (c != '\\') {
            buf[o++] = (char)c;
            p->i++;
            continue;
        }
        char e = p->s[p->i + 1];
        const char *simple = "\"\\/bfnrt";
        const char *mapped = "\"\\/\b\f\n\r\t";
        size_t m = 0;
        while (simple[m] && simple[m] != e) {
            m++;
        }
        if (simple[m]) {
            buf[o++] = mapped[m];
            p->i += 2;
            continue;
        }
        if (e != 'u') {
            p->i++;
            fail(p, "invalid escape in string");
            return false;
        }
        int hi = (p->i + 6 <= end) ? hex4(p->s + p->i + 2) : -1;
        if (hi < 0) {
            fail(p, "invalid \\u escape (needs 4 hex digits)");
            return false;
        }
        uint32_t cp = (uint32_t)hi;
        p->i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail(p, "lone low surrogate in \\u escape");
            return false;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = (p->i + 6 <= end && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u')
                         ? hex4(p->s + p->i + 2)
                         : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                fail(p, "lone high surrogate in \\u escape");
                return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            p->i += 6;
        }
        o += put_utf8(buf + o, cp);
    }
    buf[o] = '\0';
    p->i = end + 1;
    *out = buf;
    *out_len = o;
    return true;
}

static void parse_number(parser *p, smcp_json *v) {
    size_t i = p->i;
    const char *s = p->s;
    if (i < p->n && s[i] == '-') {
        i++;
    }
    if (i < p->n && s[i] == '0') {
        i++;
    } else if (i < p->n && s[i] >= '1' && s[i] <= '9') {
        while (i < p->n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    } else {
        p->i = i;
        fail(p, "invalid number");
        return;
    }
    if (i < p->n && s[i] == '.') {
        i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->i = i;
            fail(p, "invalid number (digits must follow '.')");
            return;
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->i = i;
            fail(p, "invalid number (digits must follow the exponent)");
            return;
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }
    v->num = smcp__parse_number(s + p->i, i - p->i);
    p->i = i;
}

static bool literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->n - p->i >= n && memcmp(p->s + p->i, word, n) == 0) {
        p->i += n;
        return true;
    }
    fail(p, "unexpected character");
    return false;
}

static smcp_json *parse_value(parser *p);

static bool parse_members(parser *p, smcp_json *v, bool object) {
    char close = object ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return true;
    }
    smcp_json **tail = &v->child;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (object) {
            if (p->i >= p->n || p->s[p->i] != '"') {
                fail(p, "expected a member name (a string)");
                return false;
            }
            if (!parse_string(p, &key, &key_len)) {
                return false;
            }
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                fail(p, "expected ':' after the member name");
                return false;
            }
            p->i++;
            skip_ws(p);
        }
        smcp_json *item = parse_value(p);
        if (item == NULL) {
            return false;
        }
        item->key = key;
        item->key_len = key_len;
        *tail = item;
        tail = &item->next;
        v->count++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return true;
        }
        fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return false;
    }
}

static smcp_json *parse_value(parser *p) {
    if (p->i >= p->n) {
        fail(p, "unexpected end of input");
        return NULL;
    }
    char c = p->s[p->i];
    smcp_json *v;
    bool ok = true;
    switch (c) {
    case '{':
    case '[':
        if (++p->depth > SMCP_MAX_DEPTH) {
            fail(p, "nesting too deep");
            return NULL;
        }
        v = new_node(p, c == '{' ? SMCP_JSON_OBJECT : SMCP_JSON_ARRAY);
        ok = v != NULL && parse_members(p, v, c == '{');
        p->depth--;
        break;
    case '"':
        v = new_node(p, SMCP_JSON_STRING);
        ok = v != NULL && parse_string(p, &v->str, &v->len);
        break;
    case 't':
    case 'f':
        v = new_node(p, SMCP_JSON_BOOL);
        ok = v != NULL && literal(p, c == 't' ? "true" : "false");
        if (ok) {
            v->boolean = c == 't';
        }
        break;
    case 'n':
        v = new_node(p, SMCP_JSON_NULL);
        ok = v != NULL && literal(p, "null");
        break;
    default:
        if (c != '-' && (c < '0' || c > '9')) {
            fail(p, "expected a JSON value");
            return NULL;
        }
        v = new_node(p, SMCP_JSON_NUMBER);
        if (v != NULL) {
            parse_number(p, v);
        }
        ok = v != NULL && p->what == NULL;
    }
    if (!ok) {
        return NULL;
    }
    v->raw_len = (size_t)(p->s + p->i - v->raw);
    return v;
}

smcp_json *smcp_json_parse(const char *text, size_t len, const char **error) {
    parser p = {.s = text, .n = len};
    skip_ws(&p);
    smcp_json *v = parse_value(&p);
    if (v != NULL) {
        skip_ws(&p);
        if (p.i != p.n) {
            fail(&p, "unexpected text after the JSON value");
            v = NULL;
        }
    }
    if (v == NULL && error != NULL) {
        smcp_buf *b = smcp_buf_new(64);
        if (b != NULL) {
            smcp_buf_puts(b, p.what);
            smcp_buf_puts(b, " at byte ");
            smcp_buf_put_uint(b, p.at);
        }
        *error = (b != NULL && smcp_buf_cstr(b) != NULL) ? b->data : "out of memory";
    }
    return v;
}

/* --- accessors -------------------------------------------------------------------------------- */

const smcp_json *smcp_json_get(const smcp_json *obj, const char *key) {
    if (obj == NULL || obj->type != SMCP_JSON_OBJECT || key == NULL) {
        return NULL;
    }
    size_t n = strlen(key);
    const smcp_json *found = NULL;
    for (const smcp_json *m = obj->child; m != NULL; m = m->next) {
        if (m->key_len == n && memcmp(m->key, key, n) == 0) {
            found = m;
        }
    }
    return found;
}

const smcp_json *smcp_json_at(const smcp_json *arr, size_t i) {
    if (arr == NULL || arr->type != SMCP_JSON_ARRAY) {
        return NULL;
    }
    const smcp_json *e = arr->child;
    while (e != NULL && i-- > 0) {
        e = e->next;
    }
    return e;
}

const char *smcp_json_str(const smcp_json *v) {
    return (v != NULL && v->type == SMCP_JSON_STRING) ? v->str : NULL;
}

bool smcp_json_int(const smcp_json *v, int64_t *out) {
    if (v == NULL || v->type != SMCP_JSON_NUMBER) {
        return false;
    }
    bool plain = true; /* no fraction or exponent: read the digits exactly */
    for (size_t i = 0; i < v->raw_len; i++) {
        char c = v->raw[i];
        if (c == '.' || c == 'e' || c == 'E') {
            plain = false;
        }
    }
    if (plain) {
        size_t i = v->raw[0] == '-' ? 1 : 0;
        uint64_t limit = v->raw[0] == '-' ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        uint64_t acc = 0;
        for (; i < v->raw_len; i++) {
            uint64_t d = (uint64_t)(v->raw[i] - '0');
            if (acc > (limit - d) / 10) {
                return false;
            }
            acc = acc * 10 + d;
        }
        *out = v->raw[0] == '-' ? (int64_t)(0 - acc) : (int64_t)acc;
        return true;
    }
    double d = v->num;
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d) {
        *out = (int64_t)d;
        return true;
    }
    return false;
}

bool smcp_json_double(const smcp_json *v, double *out) {
    if (v == NULL || v->type != SMCP_JSON_NUMBER) {
        return false;
    }
    *out = v->num;
    return true;
}

bool smcp_json_bool(const smcp_json *v, bool *out) {
    if (v == NULL || v->type != SMCP_JSON_BOOL) {
        return false;
    }
    *out = v->boolean;
    return true;
}

bool smcp_json_is_null(const smcp_json *v) { return v != NULL && v->type == SMCP_JSON_NULL; }

const char *smcp_json_get_str(const smcp_json *obj, const char *key) {
    return smcp_json_str(smcp_json_get(obj, key));
}

bool smcp_json_get_int(const smcp_json *obj, const char *key, int64_t *out) {
    return smcp_json_int(smcp_json_get(obj, key), out);
}

bool smcp_json_get_double(const smcp_json *obj, const char *key, double *out) {
    return smcp_json_double(smcp_json_get(obj, key), out);
}

bool smcp_json_get_bool(const smcp_json *obj, const char *key, bool *out) {
    return smcp_json_bool(smcp_json_get(obj, key), out);
}

const char *smcp_json_dump(const smcp_json *v, size_t *len) {
    smcp_buf *b = smcp_buf_new(v != NULL ? v->raw_len + 16 : 16);
    if (b == NULL) {
        return NULL;
    }
    smcp_w_value(b, v);
    const char *s = smcp_buf_cstr(b);
    if (len != NULL) {
        *len = s != NULL ? b->len : 0;
    }
    return s;
}
