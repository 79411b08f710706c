/*
 * store.c - the notes tenant's storage layout and rendering.
 *
 *   note:<id as 10 digits>  {"id","title","body","tags","created_ms","updated_ms"} as JSON;
 *                           zero-padding makes the box's sorted kv_list come out in id order
 *   meta:next_id            the next id to hand out, in decimal
 */
#include "store.h"

/* --- storage ---------------------------------------------------------------------------------- */

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

bool save_note(smcp_ctx *ctx, int64_t id, const char *title, const smcp_json *body,
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
    return !b->failed && kv_ok(ctx, smcp_kv_set(note_key(id), b->data, b->len));
}

/* Hands out the next id. Ids already in use are skipped, so a lost counter update (two
 * instances creating at once) cannot make a note overwrite another. */
int64_t next_id(smcp_ctx *ctx) {
    int64_t id = 1;
    size_t n;
    const char *text = smcp_kv_get("meta:next_id", &n);
    const smcp_json *v = text != NULL ? smcp_json_parse(text, n, NULL) : NULL;
    if (v != NULL) {
        smcp_json_int(v, &id);
    }
    while (smcp_kv_get(note_key(id), NULL) != NULL) {
        id++;
    }
    smcp_buf *b = smcp_buf_new(24);
    smcp_buf_put_int(b, id + 1);
    return kv_ok(ctx, smcp_kv_set("meta:next_id", b->data, b->len)) ? id : 0;
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
