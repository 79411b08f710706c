/*
 * jsonpath.c - a small path language over the SDK's parsed JSON: a.b[2].c, ["odd.key"], [-1].
 * Errors quote the path up to the failing step so the caller can see where it went wrong.
 */
#include "jsonpath.h"

static const char *step_error(const char *path, size_t upto, const char *why) {
    smcp_buf *m = smcp_buf_new(96);
    smcp_buf_puts(m, why);
    smcp_buf_puts(m, " at '");
    smcp_buf_putn(m, path, upto);
    smcp_buf_puts(m, "'");
    return smcp_buf_cstr(m);
}

static const char *type_name(const smcp_json *v) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array",
                                        "an object"};
    return names[v->type];
}

/* Member `name` (n bytes) of cur; NULL with *err when cur is not an object or lacks it. */
static const smcp_json *member(const smcp_json *cur, const char *name, size_t n, const char *path,
                               size_t at, const char **err) {
    if (cur->type != SMCP_JSON_OBJECT) {
        smcp_buf *m = smcp_buf_new(64);
        smcp_buf_puts(m, "cannot take a member of ");
        smcp_buf_puts(m, type_name(cur));
        *err = step_error(path, at, smcp_buf_cstr(m));
        return NULL;
    }
    const smcp_json *found = NULL;
    for (const smcp_json *c = cur->child; c != NULL; c = c->next) {
        if (c->key_len == n && memcmp(c->key, name, n) == 0) {
            found = c; /* the last duplicate wins, as in the SDK's lookups */
        }
    }
    if (found == NULL) {
        smcp_buf *m = smcp_buf_new(64);
        smcp_buf_puts(m, "no member '");
        smcp_buf_putn(m, name, n);
        smcp_buf_puts(m, "'");
        *err = step_error(path, at, smcp_buf_cstr(m));
    }
    return found;
}

static const smcp_json *element(const smcp_json *cur, int64_t index, const char *path, size_t at,
                                const char **err) {
    if (cur->type != SMCP_JSON_ARRAY) {
        smcp_buf *m = smcp_buf_new(64);
        smcp_buf_puts(m, "cannot index ");
        smcp_buf_puts(m, type_name(cur));
        *err = step_error(path, at, smcp_buf_cstr(m));
        return NULL;
    }
    int64_t count = (int64_t)cur->count;
    int64_t i = index < 0 ? count + index : index;
    if (i < 0 || i >= count) {
        smcp_buf *m = smcp_buf_new(64);
        smcp_buf_puts(m, "index ");
        smcp_buf_put_int(m, index);
        smcp_buf_puts(m, " is out of range (the array has ");
        smcp_buf_put_int(m, count);
        smcp_buf_puts(m, " elements)");
        *err = step_error(path, at, smcp_buf_cstr(m));
        return NULL;
    }
    return smcp_json_at(cur, (size_t)i);
}

const smcp_json *json_path(const smcp_json *doc, const char *path, const char **err) {
    const smcp_json *cur = doc;
    size_t n = strlen(path);
    size_t i = 0;
    if (i < n && path[i] == '$') {
        i++;
    }
    bool first = true;
    while (i < n && cur != NULL) {
        size_t start = i;
        char c = path[i];
        if (c == '.' || (first && c != '[')) {
            if (c == '.') {
                i++;
            }
            size_t name = i;
            while (i < n && path[i] != '.' && path[i] != '[') {
                i++;
            }
            if (i == name) {
                *err = step_error(path, i, "empty member name");
                return NULL;
            }
            cur = member(cur, path + name, i - name, path, i, err);
        } else if (c == '[' && i + 1 < n && (path[i + 1] == '"' || path[i + 1] == '\'')) {
            char quote = path[i + 1];
            size_t name = i + 2;
            size_t close = name;
            while (close < n && path[close] != quote) {
                close++;
            }
            if (close + 1 >= n || path[close + 1] != ']') {
                *err = step_error(path, start, "unterminated [\"name\"]");
                return NULL;
            }
            i = close + 2;
            cur = member(cur, path + name, close - name, path, i, err);
        } else if (c == '[') {
            i++;
            bool neg = i < n && path[i] == '-';
            if (neg) {
                i++;
            }
            int64_t index = 0;
            size_t digits = i;
            while (i < n && path[i] >= '0' && path[i] <= '9' && index < 1000000000) {
                index = index * 10 + (path[i] - '0');
                i++;
            }
            if (i == digits || i >= n || path[i] != ']') {
                *err = step_error(path, i < n ? i + 1 : n, "expected [integer] or [\"name\"]");
                return NULL;
            }
            i++;
            cur = element(cur, neg ? -index : index, path, i, err);
        } else {
            *err = step_error(path, i + 1, "expected '.' or '['");
            return NULL;
        }
        first = false;
    }
    return cur;
}
