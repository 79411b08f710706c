/*
 * store.c - the notes tenant's storage layout and rendering.
 *
 *   note:<id as 10 digits>  {"id","title","body","tags","created_ms","updated_ms"} as JSON;
 *                           zero-padding makes the box's sorted kv_list come out in id order
 *   meta:next_id            the next id to hand out, in decimal (kept by kv_incr)
 */
#include "store.h"

/* --- storage ---------------------------------------------------------------------------------- */

/* How often a write is retried when another call got there first. Each retry means another
 * call succeeded, so running out takes this many calls racing on one note. */
#define MAX_ATTEMPTS 64

const char *note_key(int64_t id) {
    smcp_buf *b = smcp_buf_new(16);
    smcp_buf_puts(b, "note:");
    char digits[10];
    for (int i = 9; i >= 0; i--) {
        digits[i] = (char)('0' + id % 10);
        id /= 10;
    }
    smcp_buf_putn(b, digits, 10);
    return smcp_buf_cstr(b);
}

/* The stored note, or NULL when there is none (or it is unreadable). */
const smcp_json *load_note(int64_t id) {
    size_t n;
    const char *text = smcp_kv_get(note_key(id), &n);
    const smcp_json *note = text != NULL ? smcp_json_parse(text, n, NULL) : NULL;
    return (note != NULL && note->type == SMCP_JSON_OBJECT) ? note : NULL;
}

/* Reports a kv failure as the tool's error; true when rc is fine. */
bool kv_ok(smcp_ctx *ctx, int rc) {
    if (rc == SMCP_KV_OK) {
        return true;
    }
    smcp_buf *m = smcp_buf_new(128);
    smcp_buf_puts(m, "could not save: ");
    smcp_buf_puts(m, smcp_kv_strerror(rc));
    smcp_tool_error(ctx, smcp_buf_cstr(m));
    return false;
}

/* The stored JSON text of a note (NULL when out of memory). */
static smcp_buf *note_json(int64_t id, const char *title, const smcp_json *body,
                           const smcp_json *tags, int64_t created, int64_t updated) {
    smcp_buf *b = smcp_buf_new(body->len + 256);
    smcp_w_obj(b);
    smcp_w_kint(b, "id", id);
    smcp_w_kstr(b, "title", title);
    smcp_w_key(b, "body");
    smcp_w_strn(b, body->str, body->len);
    smcp_w_key(b, "tags");
    if (tags != NULL) {
        smcp_w_value(b, tags);
    } else {
        smcp_w_raw(b, "[]", 2);
    }
    smcp_w_kint(b, "created_ms", created);
    smcp_w_kint(b, "updated_ms", updated);
    smcp_w_obj_end(b);
    return b->failed ? NULL : b;
}

static bool out_of_memory(smcp_ctx *ctx) {
    smcp_tool_error(ctx, "could not save: the note does not fit in the tenant's memory");
    return false;
}

/* Calls of this tenant run in parallel instances (docs/abi.md 2.7), so ids come from kv_incr,
 * which never hands one number to two calls, and a note is written with kv_cas over "absent",
 * which never overwrites one. meta:next_id keeps its meaning (the next id to hand out, as
 * older versions stored it): the id is the counter's value before the increment. An id whose
 * note exists anyway (written by an older version that lost a counter update) is skipped. */
int64_t create_note(smcp_ctx *ctx, const char *title, const smcp_json *body,
                    const smcp_json *tags, int64_t now) {
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        int64_t next;
        if (!kv_ok(ctx, smcp_kv_incr("meta:next_id", 1, &next))) {
            return 0;
        }
        int64_t id = next - 1;
        if (id < 1) {
            continue; /* the counter was absent: ids start at 1 */
        }
        smcp_buf *b = note_json(id, title, body, tags, now, now);
        if (b == NULL) {
            out_of_memory(ctx);
            return 0;
        }
        int rc = smcp_kv_cas(note_key(id), NULL, 0, b->data, b->len);
        if (rc == 1) {
            return id;
        }
        if (rc < 0) {
            kv_ok(ctx, rc);
            return 0;
        }
    }
    smcp_tool_error(ctx, "could not save: no free note id found; try again");
    return 0;
}

bool update_note(smcp_ctx *ctx, int64_t id, const note_change *change) {
    const char *key = note_key(id);
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        size_t n;
        const char *text = smcp_kv_get(key, &n);
        const smcp_json *note = text != NULL ? smcp_json_parse(text, n, NULL) : NULL;
        if (note == NULL || note->type != SMCP_JSON_OBJECT) {
            change->missing(ctx, id);
            return false;
        }
        const smcp_json *body = change->body != NULL ? change->body : smcp_json_get(note, "body");
        const char *title =
            change->title != NULL ? change->title : smcp_json_get_str(note, "title");
        const smcp_json *tags = change->tags != NULL ? change->tags : smcp_json_get(note, "tags");
        int64_t created = 0;
        smcp_json_get_int(note, "created_ms", &created);
        if (!change->check(ctx, title, body)) {
            return false;
        }
        smcp_buf *b = note_json(id, title, body, tags, created, smcp_time_now_ms());
        if (b == NULL) {
            return out_of_memory(ctx);
        }
        /* Written only over the text read above: a change another call made in between is
         * never lost; this one is redone on top of it. */
        int rc = smcp_kv_cas(key, text, n, b->data, b->len);
        if (rc == 1) {
            return true;
        }
        if (rc < 0) {
            return kv_ok(ctx, rc);
        }
    }
    smcp_tool_error(ctx, "could not save: the note kept changing under other calls; try again");
    return false;
}

const smcp_json *note_keys(void) { return smcp_kv_list("note:"); }

const smcp_json *load_by_key(const smcp_json *key) {
    size_t n;
    const char *text = smcp_kv_get(key->str, &n);
    const smcp_json *note = text != NULL ? smcp_json_parse(text, n, NULL) : NULL;
    return (note != NULL && note->type == SMCP_JSON_OBJECT) ? note : NULL;
}

/* --- rendering -------------------------------------------------------------------------------- */

void put_markdown(smcp_buf *b, const smcp_json *note) {
    const smcp_json *body = smcp_json_get(note, "body");
    int64_t created = 0, updated = 0;
    smcp_json_get_int(note, "created_ms", &created);
    smcp_json_get_int(note, "updated_ms", &updated);
    smcp_buf_puts(b, "# ");
    smcp_buf_puts(b, smcp_json_get_str(note, "title"));
    smcp_buf_puts(b, "\n\n");
    if (body != NULL && body->type == SMCP_JSON_STRING) {
        smcp_buf_putn(b, body->str, body->len);
    }
    smcp_buf_puts(b, "\n\n---\n");
    const smcp_json *tags = smcp_json_get(note, "tags");
    if (tags != NULL && tags->count > 0) {
        smcp_buf_puts(b, "tags: ");
        for (const smcp_json *t = tags->child; t != NULL; t = t->next) {
            smcp_buf_puts(b, t->str);
            smcp_buf_puts(b, t->next != NULL ? ", " : "\n");
        }
    }
    smcp_buf_puts(b, "created: ");
    smcp_buf_put_time(b, created);
    smcp_buf_puts(b, "\nupdated: ");
    smcp_buf_put_time(b, updated);
    smcp_buf_putc(b, '\n');
}

void put_summary(smcp_buf *w, const smcp_json *note) {
    smcp_w_obj(w);
    for (const char *const *k = (const char *const[]){"id", "title", "tags", "updated_ms", NULL};
         *k != NULL; k++) {
        smcp_w_key(w, *k);
        smcp_w_value(w, smcp_json_get(note, *k));
    }
    smcp_w_obj_end(w);
}
