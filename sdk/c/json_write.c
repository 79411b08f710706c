/*
 * json_write.c - the SDK's JSON writer: appends values to an smcp_buf, inserting the commas
 * and colons itself, and refuses (marks the buffer failed) instead of writing invalid JSON.
 */
#include "smcp_internal.h"

/* --- writer ----------------------------------------------------------------------------------- */

#define W_ARRAY 1u
#define W_OBJECT 2u
#define W_NONEMPTY 4u

static void w_fail(smcp_buf *w) { w->failed = true; }

/* Writes the separator a value needs here; false if a value is not allowed here. */
static bool pre_value(smcp_buf *w) {
    if (w->failed) {
        return false;
    }
    if (w->depth == 0) {
        return true;
    }
    uint8_t *top = &w->open[w->depth - 1];
    if (*top & W_OBJECT) {
        if (!w->after_key) {
            w_fail(w);
            return false;
        }
        w->after_key = false;
        return true;
    }
    if (*top & W_NONEMPTY) {
        smcp_buf_putc(w, ',');
    }
    *top |= W_NONEMPTY;
    return !w->failed;
}

void smcp__put_json_string(smcp_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    smcp_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t k = c >= 0x80 ? smcp__utf8_seq(p + i, n - i) : 0;
        if (k > 0) {
            i += k;
            continue;
        }
        smcp_buf_putn(b, s + run, i - run);
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (c >= 0x80) { /* not UTF-8: substitute U+FFFD */
                memcpy(esc, "\xEF\xBF\xBD", 3);
                elen = 3;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        }
        smcp_buf_putn(b, esc, elen);
        i++;
        run = i;
    }
    smcp_buf_putn(b, s + run, n - run);
    smcp_buf_putc(b, '"');
}

static void open_container(smcp_buf *w, char c, uint8_t kind) {
    if (!pre_value(w)) {
        return;
    }
    if (w->depth >= SMCP_MAX_WRITE_DEPTH) {
        w_fail(w);
        return;
    }
    w->open[w->depth++] = kind;
    smcp_buf_putc(w, c);
}

static void close_container(smcp_buf *w, char c, uint8_t kind) {
    if (w->failed || w->depth == 0 || !(w->open[w->depth - 1] & kind) || w->after_key) {
        w_fail(w);
        return;
    }
    w->depth--;
    smcp_buf_putc(w, c);
}

void smcp_w_obj(smcp_buf *w) { open_container(w, '{', W_OBJECT); }
void smcp_w_obj_end(smcp_buf *w) { close_container(w, '}', W_OBJECT); }
void smcp_w_arr(smcp_buf *w) { open_container(w, '[', W_ARRAY); }
void smcp_w_arr_end(smcp_buf *w) { close_container(w, ']', W_ARRAY); }

void smcp_w_keyn(smcp_buf *w, const char *key, size_t n) {
    if (w->failed || w->depth == 0 || !(w->open[w->depth - 1] & W_OBJECT) || w->after_key) {
        w_fail(w);
        return;
    }
    uint8_t *top = &w->open[w->depth - 1];
    if (*top & W_NONEMPTY) {
        smcp_buf_putc(w, ',');
    }
    *top |= W_NONEMPTY;
    smcp__put_json_string(w, key, n);
    smcp_buf_putc(w, ':');
    w->after_key = true;
}

void smcp_w_key(smcp_buf *w, const char *key) { smcp_w_keyn(w, key, strlen(key)); }

void smcp_w_strn(smcp_buf *w, const char *s, size_t n) {
    if (pre_value(w)) {
        smcp__put_json_string(w, s, n);
    }
}

void smcp_w_str(smcp_buf *w, const char *s) {
    if (s == NULL) {
        smcp_w_null(w);
    } else {
        smcp_w_strn(w, s, strlen(s));
    }
}

void smcp_w_int(smcp_buf *w, int64_t v) {
    if (pre_value(w)) {
        smcp_buf_put_int(w, v);
    }
}

void smcp_w_double(smcp_buf *w, double v) {
    if (pre_value(w)) {
        smcp_buf_put_double(w, v);
    }
}

void smcp_w_bool(smcp_buf *w, bool v) {
    if (pre_value(w)) {
        smcp_buf_puts(w, v ? "true" : "false");
    }
}

void smcp_w_null(smcp_buf *w) {
    if (pre_value(w)) {
        smcp_buf_putn(w, "null", 4);
    }
}

void smcp_w_raw(smcp_buf *w, const char *json, size_t n) {
    if (pre_value(w)) {
        smcp_buf_putn(w, json, n);
    }
}

void smcp_w_value(smcp_buf *w, const smcp_json *v) {
    if (v == NULL) {
        smcp_w_null(w);
        return;
    }
    switch (v->type) {
    case SMCP_JSON_NULL:
        smcp_w_null(w);
        break;
    case SMCP_JSON_BOOL:
        smcp_w_bool(w, v->boolean);
        break;
    case SMCP_JSON_NUMBER: /* the source literal is valid JSON and keeps every digit */
        smcp_w_raw(w, v->raw, v->raw_len);
        break;
    case SMCP_JSON_STRING:
        smcp_w_strn(w, v->str, v->len);
        break;
    case SMCP_JSON_ARRAY:
        smcp_w_arr(w);
        for (const smcp_json *e = v->child; e != NULL; e = e->next) {
            smcp_w_value(w, e);
        }
        smcp_w_arr_end(w);
        break;
    case SMCP_JSON_OBJECT:
        smcp_w_obj(w);
        for (const smcp_json *m = v->child; m != NULL; m = m->next) {
            smcp_w_keyn(w, m->key, m->key_len);
            smcp_w_value(w, m);
        }
        smcp_w_obj_end(w);
        break;
    }
}

void smcp_w_kstr(smcp_buf *w, const char *key, const char *s) {
    smcp_w_key(w, key);
    smcp_w_str(w, s);
}

void smcp_w_kint(smcp_buf *w, const char *key, int64_t v) {
    smcp_w_key(w, key);
    smcp_w_int(w, v);
}

void smcp_w_kdouble(smcp_buf *w, const char *key, double v) {
    smcp_w_key(w, key);
    smcp_w_double(w, v);
}

void smcp_w_kbool(smcp_buf *w, const char *key, bool v) {
    smcp_w_key(w, key);
    smcp_w_bool(w, v);
}
