/*
 * notes - personal notes in the tenant's encrypted key-value store.
 *
 * Tools create, read, list, search, update and delete notes; each note is also a resource
 * note://<id> (text/markdown), and two prompts embed notes. All state lives in kv (see
 * store.c); instances keep nothing between requests.
 */
#include "store.h"

#define MAX_TITLE 200
#define MAX_BODY 100000
#define MAX_TAGS 20
#define MAX_TAG 64
#define DAY_MS 86400000

/* --- arguments -------------------------------------------------------------------------------- */

/* `id` as an integer or a string of digits (models send both), 1 or more. */
static bool arg_id(smcp_ctx *ctx, const smcp_json *args, int64_t *id) {
    const smcp_json *v = smcp_json_get(args, "id");
    const char *s = smcp_json_str(v);
    bool ok = false;
    if (s != NULL && *s != '\0' && v->len <= 10) {
        int64_t acc = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            acc = acc * 10 + (*s - '0');
        }
        *id = acc;
        ok = *s == '\0';
    } else {
        ok = smcp_json_int(v, id);
    }
    if (!ok || *id < 1 || *id > 9999999999LL) {
        smcp_tool_error(ctx, "id must be a note id (a positive integer, e.g. 3); note_list shows "
                             "the ids");
        return false;
    }
    return true;
}

static bool check_len(smcp_ctx *ctx, const char *what, size_t len, size_t min, size_t max) {
    if (len >= min && len <= max) {
        return true;
    }
    smcp_buf *m = smcp_buf_new(96);
    smcp_buf_puts(m, what);
    smcp_buf_puts(m, len < min ? " must not be empty" : " is too long; the limit is ");
    if (len >= min) {
        smcp_buf_put_uint(m, max);
        smcp_buf_puts(m, " bytes");
    }
    smcp_tool_error(ctx, smcp_buf_cstr(m));
    return false;
}

/* Titles are handled as C strings, so an embedded NUL (\u0000) would silently cut them. */
static bool title_ok(smcp_ctx *ctx, const smcp_json *args) {
    const smcp_json *title = smcp_json_get(args, "title");
    if (smcp_json_str(title) != NULL && strlen(title->str) != title->len) {
        smcp_tool_error(ctx, "title must not contain NUL characters");
        return false;
    }
    return true;
}

/* Optional `tags`: NULL when absent; sets *bad when present but invalid (error reported). */
static const smcp_json *arg_tags(smcp_ctx *ctx, const smcp_json *args, bool *bad) {
    const smcp_json *tags = smcp_json_get(args, "tags");
    *bad = false;
    if (tags == NULL || tags->type == SMCP_JSON_NULL) {
        return NULL;
    }
    bool ok = tags->type == SMCP_JSON_ARRAY && tags->count <= MAX_TAGS;
    for (const smcp_json *t = ok ? tags->child : NULL; t != NULL; t = t->next) {
        ok = ok && t->type == SMCP_JSON_STRING && t->len > 0 && t->len <= MAX_TAG;
    }
    if (!ok) {
        smcp_tool_error(ctx, "tags must be an array of at most 20 non-empty strings of at most "
                             "64 bytes each");
        *bad = true;
        return NULL;
    }
    return tags;
}

static void not_found(smcp_ctx *ctx, int64_t id) {
    smcp_buf *m = smcp_buf_new(64);
    smcp_buf_puts(m, "note ");
    smcp_buf_put_int(m, id);
    smcp_buf_puts(m, " does not exist; note_list shows the ids");
    smcp_tool_error(ctx, smcp_buf_cstr(m));
}

/* --- tools ------------------------------------------------------------------------------------ */

static void tool_create(smcp_ctx *ctx, const smcp_json *args) {
    const char *title = smcp_arg_str(ctx, args, "title");
    const smcp_json *body = smcp_json_get(args, "body");
    bool bad;
    if (title == NULL || smcp_arg_str(ctx, args, "body") == NULL) {
        return;
    }
    const smcp_json *tags = arg_tags(ctx, args, &bad);
    if (bad || !title_ok(ctx, args) || !check_len(ctx, "title", strlen(title), 1, MAX_TITLE) ||
        !check_len(ctx, "body", body->len, 0, MAX_BODY)) {
        return;
    }
    int64_t id = create_note(ctx, title, body, tags, smcp_time_now_ms());
    if (id == 0) {
        return;
    }
    smcp_buf *b = smcp_buf_new(64);
    smcp_w_obj(b);
    smcp_w_kint(b, "id", id);
    smcp_buf *uri = smcp_buf_new(24);
    smcp_buf_puts(uri, "note://");
    smcp_buf_put_int(uri, id);
    smcp_w_kstr(b, "uri", smcp_buf_cstr(uri));
    smcp_w_obj_end(b);
    smcp_tool_structured(ctx, b->data, b->len);
}

static void tool_get(smcp_ctx *ctx, const smcp_json *args) {
    int64_t id;
    if (!arg_id(ctx, args, &id)) {
        return;
    }
    const smcp_json *note = load_note(id);
    if (note == NULL) {
        not_found(ctx, id);
        return;
    }
    size_t n;
    const char *json = smcp_json_dump(note, &n);
    smcp_tool_structured(ctx, json, n);
}

static bool has_tag(const smcp_json *note, const char *tag) {
    const smcp_json *tags = smcp_json_get(note, "tags");
    for (const smcp_json *t = tags != NULL ? tags->child : NULL; t != NULL; t = t->next) {
        if (smcp_streq(t->str, tag)) {
            return true;
        }
    }
    return false;
}

static void tool_list(smcp_ctx *ctx, const smcp_json *args) {
    const char *tag = smcp_arg_str_opt(ctx, args, "tag", NULL);
    if (smcp_ctx_failed(ctx)) {
        return;
    }
    const smcp_json *keys = note_keys();
    smcp_buf *w = smcp_buf_new(1024);
    int64_t count = 0;
    smcp_w_obj(w);
    smcp_w_key(w, "notes");
    smcp_w_arr(w);
    for (const smcp_json *k = keys != NULL ? keys->child : NULL; k != NULL; k = k->next) {
        const smcp_json *note = load_by_key(k);
        if (note != NULL && (tag == NULL || has_tag(note, tag))) {
            put_summary(w, note);
            count++;
        }
    }
    smcp_w_arr_end(w);
    smcp_w_kint(w, "count", count);
    smcp_w_obj_end(w);
    smcp_tool_structured(ctx, w->data, w->len);
}

/* ASCII case-insensitive substring test. */
static bool contains_ci(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        size_t j = 0;
        while (j < m) {
            char a = hay[i + j], b = needle[j];
            a = (a >= 'A' && a <= 'Z') ? (char)(a + 32) : a;
            b = (b >= 'A' && b <= 'Z') ? (char)(b + 32) : b;
            if (a != b) {
                break;
            }
            j++;
        }
        if (j == m) {
            return true;
        }
    }
    return false;
}

static void tool_search(smcp_ctx *ctx, const smcp_json *args) {
    const char *query = smcp_arg_str(ctx, args, "query");
    if (query == NULL || !check_len(ctx, "query", strlen(query), 1, MAX_TITLE)) {
        return;
    }
    const smcp_json *keys = note_keys();
    smcp_buf *w = smcp_buf_new(1024);
    int64_t count = 0;
    smcp_w_obj(w);
    smcp_w_kstr(w, "query", query);
    smcp_w_key(w, "notes");
    smcp_w_arr(w);
    for (const smcp_json *k = keys != NULL ? keys->child : NULL; k != NULL; k = k->next) {
        const smcp_json *note = load_by_key(k);
        if (note == NULL) {
            continue;
        }
        const char *title = smcp_json_get_str(note, "title");
        const smcp_json *body = smcp_json_get(note, "body");
        bool in_title = title != NULL && contains_ci(title, strlen(title), query);
        bool in_body = smcp_json_str(body) != NULL && contains_ci(body->str, body->len, query);
        bool in_tags = false;
        const smcp_json *tags = smcp_json_get(note, "tags");
        for (const smcp_json *t = tags != NULL ? tags->child : NULL; t != NULL; t = t->next) {
            in_tags = in_tags || (t->str != NULL && contains_ci(t->str, t->len, query));
        }
        if (in_title || in_body || in_tags) {
            put_summary(w, note);
            count++;
        }
    }
    smcp_w_arr_end(w);
    smcp_w_kint(w, "count", count);
    smcp_w_obj_end(w);
    smcp_tool_structured(ctx, w->data, w->len);
}

/* The title and body a note_update would store, within their limits. */
static bool merged_ok(smcp_ctx *ctx, const char *title, const smcp_json *body) {
    return check_len(ctx, "title", strlen(title), 1, MAX_TITLE) &&
           check_len(ctx, "body", body->len, 0, MAX_BODY);
}

static void tool_update(smcp_ctx *ctx, const smcp_json *args) {
    int64_t id;
    bool bad;
    if (!arg_id(ctx, args, &id)) {
        return;
    }
    const char *title = smcp_arg_str_opt(ctx, args, "title", NULL);
    const char *body_s = smcp_arg_str_opt(ctx, args, "body", NULL);
    const smcp_json *tags = arg_tags(ctx, args, &bad);
    if (smcp_ctx_failed(ctx)) {
        return;
    }
    if (!title_ok(ctx, args)) {
        return;
    }
    if (title == NULL && body_s == NULL && tags == NULL) {
        smcp_tool_error(ctx, "nothing to update: give at least one of title, body, tags");
        return;
    }
    note_change change = {.title = title,
                          .body = body_s != NULL ? smcp_json_get(args, "body") : NULL,
                          .tags = tags,
                          .missing = not_found,
                          .check = merged_ok};
    if (!update_note(ctx, id, &change)) {
        return;
    }
    tool_get(ctx, args);
}

static void tool_delete(smcp_ctx *ctx, const smcp_json *args) {
    int64_t id;
    if (!arg_id(ctx, args, &id)) {
        return;
    }
    if (load_note(id) == NULL) {
        not_found(ctx, id);
        return;
    }
    if (!kv_ok(ctx, smcp_kv_delete(note_key(id)))) {
        return;
    }
    smcp_buf *m = smcp_buf_new(32);
    smcp_buf_puts(m, "deleted note ");
    smcp_buf_put_int(m, id);
    smcp_tool_text(ctx, smcp_buf_cstr(m));
}

/* --- resources -------------------------------------------------------------------------------- */

static void list_resources(smcp_ctx *ctx) {
    const smcp_json *keys = note_keys();
    for (const smcp_json *k = keys != NULL ? keys->child : NULL; k != NULL; k = k->next) {
        const smcp_json *note = load_by_key(k);
        int64_t id;
        if (note == NULL || !smcp_json_get_int(note, "id", &id)) {
            continue;
        }
        smcp_buf *uri = smcp_buf_new(24);
        smcp_buf_puts(uri, "note://");
        smcp_buf_put_int(uri, id);
        smcp_buf *name = smcp_buf_new(24);
        smcp_buf_puts(name, "note-");
        smcp_buf_put_int(name, id);
        smcp_resource r = {.uri = smcp_buf_cstr(uri),
                           .name = smcp_buf_cstr(name),
                           .title = smcp_json_get_str(note, "title"),
                           .mime_type = "text/markdown"};
        smcp_resource_add(ctx, &r);
    }
}

/* The id in "note://<digits>", or 0. */
static int64_t uri_id(const char *uri) {
    if (strncmp(uri, "note://", 7) != 0 || uri[7] == '\0') {
        return 0;
    }
    int64_t id = 0;
    for (const char *s = uri + 7; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || id > 999999999) {
            return 0;
        }
        id = id * 10 + (*s - '0');
    }
    return id;
}

static void read_resource(smcp_ctx *ctx, const char *uri) {
    const smcp_json *note = uri_id(uri) > 0 ? load_note(uri_id(uri)) : NULL;
    if (note == NULL) {
        smcp_resource_not_found(ctx, uri);
        return;
    }
    smcp_buf *b = smcp_buf_new(512);
    put_markdown(b, note);
    smcp_resource_text(ctx, uri, "text/markdown", b->data, b->len);
}

/* --- prompts and completion ------------------------------------------------------------------- */

static void prompt_summarize(smcp_ctx *ctx, const smcp_json *args) {
    const char *id_s = smcp_json_get_str(args, "id");
    smcp_buf *uri = smcp_buf_new(32);
    smcp_buf_puts(uri, "note://");
    smcp_buf_puts(uri, id_s);
    const smcp_json *note = uri_id(smcp_buf_cstr(uri)) > 0 ? load_note(uri_id(uri->data)) : NULL;
    if (note == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "no note with that id; note_list shows the ids");
        return;
    }
    smcp_buf *b = smcp_buf_new(1024);
    smcp_buf_puts(b, "Summarize this note in three to five bullet points, then list any open "
                     "questions or action items it contains.\n\n");
    put_markdown(b, note);
    smcp_prompt_messagen(ctx, "user", b->data, b->len);
}

static void prompt_daily_review(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    int64_t now = smcp_time_now_ms();
    const smcp_json *keys = note_keys();
    smcp_buf *b = smcp_buf_new(2048);
    smcp_buf_puts(b, "Help me review my day. These are the notes I created or changed in the "
                     "last 24 hours (now is ");
    smcp_buf_put_time(b, now);
    smcp_buf_puts(b, "). Group them by theme, point out what is done and what is still open, "
                     "and suggest three priorities for tomorrow.\n");
    int recent = 0;
    for (const smcp_json *k = keys != NULL ? keys->child : NULL; k != NULL; k = k->next) {
        const smcp_json *note = load_by_key(k);
        int64_t updated = 0;
        if (note != NULL && smcp_json_get_int(note, "updated_ms", &updated) &&
            now - updated <= DAY_MS) {
            smcp_buf_puts(b, "\n");
            put_markdown(b, note);
            recent++;
        }
    }
    if (recent == 0) {
        smcp_buf_puts(b, "\n(No notes changed in the last 24 hours. Say so, and suggest "
                         "looking at older notes with note_list.)\n");
    }
    smcp_prompt_messagen(ctx, "user", b->data, b->len);
}

static void complete(smcp_ctx *ctx, const smcp_completion_request *req) {
    bool wants_id = smcp_streq(req->argument, "id") &&
                    (smcp_streq(req->ref, "summarize_note") || smcp_streq(req->ref, "note://{id}"));
    if (!wants_id) {
        return;
    }
    const smcp_json *keys = note_keys();
    for (const smcp_json *k = keys != NULL ? keys->child : NULL; k != NULL; k = k->next) {
        const char *digits = k->str + 5;
        while (*digits == '0' && digits[1] != '\0') {
            digits++;
        }
        if (strncmp(digits, req->value, strlen(req->value)) == 0) {
            smcp_completion_add(ctx, digits);
        }
    }
}

/* --- declaration ------------------------------------------------------------------------------ */

static const smcp_tool tools[] = {
    {.name = "note_create",
     .description = "Creates a note with a title, a Markdown body and optional tags; returns "
                    "its id and resource URI.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "title": {"type": "string", "maxLength": 200}, "body": {"type": "string"},
         "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20}},
         "required": ["title", "body"]}),
     .output_schema = SMCP_JSON({"type": "object", "properties": {
         "id": {"type": "integer"}, "uri": {"type": "string"}}, "required": ["id", "uri"]}),
     .call = tool_create},
    {.name = "note_get",
     .description = "Returns one note with its body, tags and timestamps (ms since the epoch).",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "id": {"type": ["integer", "string"], "description": "Note id, e.g. 3"}},
         "required": ["id"]}),
     .annotations = SMCP_JSON({"readOnlyHint": true}),
     .call = tool_get},
    {.name = "note_list",
     .description = "Lists all notes (id, title, tags, last update), optionally only those "
                    "with a given tag.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"tag": {"type": "string"}}}),
     .annotations = SMCP_JSON({"readOnlyHint": true}),
     .call = tool_list},
    {.name = "note_search",
     .description = "Finds notes whose title, body or tags contain the query "
                    "(case-insensitive for ASCII letters).",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"query": {"type": "string"}},
                                "required": ["query"]}),
     .annotations = SMCP_JSON({"readOnlyHint": true}),
     .call = tool_search},
    {.name = "note_update",
     .description = "Changes a note's title, body and/or tags (whichever are given) and "
                    "returns the updated note.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "id": {"type": ["integer", "string"], "description": "Note id, e.g. 3"},
         "title": {"type": "string", "maxLength": 200}, "body": {"type": "string"},
         "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20}},
         "required": ["id"]}),
     .annotations = SMCP_JSON({"idempotentHint": true}),
     .call = tool_update},
    {.name = "note_delete",
     .description = "Deletes a note for good.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "id": {"type": ["integer", "string"], "description": "Note id, e.g. 3"}},
         "required": ["id"]}),
     .annotations = SMCP_JSON({"destructiveHint": true, "idempotentHint": true}),
     .call = tool_delete},
};

static const smcp_resource_template templates[] = {
    {.uri_template = "note://{id}",
     .name = "note",
     .title = "A note",
     .description = "One note rendered as Markdown, by id.",
     .mime_type = "text/markdown"},
};

static const smcp_prompt_arg summarize_args[] = {
    {.name = "id", .description = "The id of the note to summarize", .required = true},
};

static const smcp_prompt prompts[] = {
    {.name = "summarize_note",
     .title = "Summarize a note",
     .description = "Asks for a bullet-point summary and the open items of one note.",
     .args = summarize_args,
     .nargs = SMCP_COUNT(summarize_args),
     .get = prompt_summarize},
    {.name = "daily_review",
     .title = "Daily review",
     .description = "Reviews the notes created or changed in the last 24 hours.",
     .get = prompt_daily_review},
};

SMCP_SERVER(.name = "notes", .version = "1.0.0", .title = "Notes",
            .instructions = "A personal notebook. Use note_search or note_list to find notes "
                            "before creating duplicates; notes are also readable as note://<id> "
                            "resources.",
            .tools = tools, .ntools = SMCP_COUNT(tools), .list_resources = list_resources,
            .read_resource = read_resource, .templates = templates,
            .ntemplates = SMCP_COUNT(templates), .prompts = prompts,
            .nprompts = SMCP_COUNT(prompts), .complete = complete);
