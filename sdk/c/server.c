/*
 * server.c - building replies: results, errors, tool/prompt/resource helpers, notifications.
 *
 * The reply is written in one pass into an arena buffer: the envelope up to the id first,
 * then either a result that handlers append to, or an error that replaces whatever the result
 * had so far (the buffer is cut back to the mark taken after the id).
 */
#include "smcp_internal.h"

/* --- request accessors ------------------------------------------------------------------------ */

const char *smcp_ctx_method(const smcp_ctx *ctx) { return ctx->method; }
const smcp_json *smcp_ctx_params(const smcp_ctx *ctx) { return ctx->params; }
const smcp_json *smcp_ctx_meta(const smcp_ctx *ctx) { return ctx->meta; }
bool smcp_ctx_failed(const smcp_ctx *ctx) { return ctx->errored || ctx->tool_is_error; }

/* --- durable tasks ------------------------------------------------------------------------------ */

/* The box's note on tasks in params._meta: {"escalate":"allowed"} or {"taskId":"..."}. */
static const smcp_json *task_meta(const smcp_ctx *ctx) {
    return smcp_json_get(ctx->meta, "smcp-box/task");
}

bool smcp_task_may_escalate(const smcp_ctx *ctx) {
    const char *escalate = smcp_json_get_str(task_meta(ctx), "escalate");
    return escalate != NULL && smcp_streq(escalate, "allowed");
}

const char *smcp_task_id(const smcp_ctx *ctx) {
    return smcp_json_get_str(task_meta(ctx), "taskId");
}

void smcp_task_escalate(smcp_ctx *ctx) {
    if (!smcp_task_may_escalate(ctx)) {
        smcp_error(ctx, SMCP_INTERNAL_ERROR,
                   "the tool asked to run as a task, but this call cannot become one "
                   "(check smcp_task_may_escalate first)");
        return;
    }
    smcp_buf *w = smcp_result(ctx);
    if (w != NULL) {
        smcp_w_obj(w);
        smcp_w_kstr(w, "resultType", "task");
        smcp_w_obj_end(w);
    }
}

/* --- reply building --------------------------------------------------------------------------- */

void smcp_error_data(smcp_ctx *ctx, int code, const char *message, const char *data_json) {
    if (ctx->errored) {
        return;
    }
    smcp_buf *w = ctx->out;
    char *data = w->data;
    size_t cap = w->cap;
    *w = ctx->mark;
    w->data = data;
    w->cap = cap;
    smcp_w_key(w, "error");
    smcp_w_obj(w);
    smcp_w_kint(w, "code", code);
    smcp_w_kstr(w, "message", message != NULL ? message : "error");
    if (data_json != NULL) {
        smcp_w_key(w, "data");
        smcp_w_raw(w, data_json, strlen(data_json));
    }
    smcp_w_obj_end(w);
    ctx->errored = true;
    ctx->started = true;
}

void smcp_error(smcp_ctx *ctx, int code, const char *message) {
    smcp_error_data(ctx, code, message, NULL);
}

const char *smcp__cat3(const char *a, const char *b, const char *c) {
    smcp_buf *m = smcp_buf_new(64);
    if (m == NULL) {
        return "out of memory";
    }
    smcp_buf_puts(m, a);
    smcp_buf_puts(m, b);
    smcp_buf_puts(m, c);
    const char *s = smcp_buf_cstr(m);
    return s != NULL ? s : "out of memory";
}

bool smcp__begin(smcp_ctx *ctx, smcp_kind k) {
    if (ctx->errored) {
        return false;
    }
    if (ctx->started) {
        return ctx->kind == k && k != K_RAW;
    }
    smcp_buf *w = ctx->out;
    ctx->started = true;
    ctx->kind = k;
    smcp_w_key(w, "result");
    switch (k) {
    case K_TOOL:
        smcp_w_obj(w);
        smcp_w_key(w, "content");
        smcp_w_arr(w);
        break;
    case K_PROMPT:
        smcp_w_obj(w);
        if (ctx->prompt != NULL && ctx->prompt->description != NULL) {
            smcp_w_kstr(w, "description", ctx->prompt->description);
        }
        smcp_w_key(w, "messages");
        smcp_w_arr(w);
        break;
    case K_READ:
        smcp_w_obj(w);
        smcp_w_key(w, "contents");
        smcp_w_arr(w);
        break;
    case K_LIST:
        smcp_w_obj(w);
        smcp_w_key(w, "resources");
        smcp_w_arr(w);
        break;
    case K_COMPLETE:
        smcp_w_obj(w);
        smcp_w_key(w, "completion");
        smcp_w_obj(w);
        smcp_w_key(w, "values");
        smcp_w_arr(w);
        break;
    case K_RAW:
    case K_NONE:
        break;
    }
    return true;
}

void smcp__finish(smcp_ctx *ctx) {
    if (ctx->errored || !ctx->started) {
        return;
    }
    smcp_buf *w = ctx->out;
    switch (ctx->kind) {
    case K_TOOL:
        smcp_w_arr_end(w);
        if (ctx->structured != NULL && !ctx->tool_is_error) {
            smcp_w_key(w, "structuredContent");
            smcp_w_raw(w, ctx->structured, ctx->structured_len);
        }
        smcp_w_kbool(w, "isError", ctx->tool_is_error);
        smcp_w_obj_end(w);
        break;
    case K_COMPLETE:
        smcp_w_arr_end(w);
        smcp_w_kint(w, "total", (int64_t)ctx->ncompletions);
        smcp_w_kbool(w, "hasMore", ctx->ncompletions > MAX_COMPLETIONS);
        smcp_w_obj_end(w);
        smcp_w_obj_end(w);
        break;
    case K_PROMPT:
    case K_READ:
    case K_LIST:
        smcp_w_arr_end(w);
        smcp_w_obj_end(w);
        break;
    case K_RAW:
    case K_NONE:
        break;
    }
}

smcp_buf *smcp_result(smcp_ctx *ctx) {
    return (!ctx->started && smcp__begin(ctx, K_RAW)) ? ctx->out : NULL;
}

/* --- tools ------------------------------------------------------------------------------------ */

void smcp_tool_textn(smcp_ctx *ctx, const char *text, size_t n) {
    if (!ctx->is_tool_call || !smcp__begin(ctx, K_TOOL)) {
        return;
    }
    smcp_buf *w = ctx->out;
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "text");
    smcp_w_key(w, "text");
    smcp_w_strn(w, text, n);
    smcp_w_obj_end(w);
}

void smcp_tool_text(smcp_ctx *ctx, const char *text) { smcp_tool_textn(ctx, text, strlen(text)); }

void smcp_tool_error(smcp_ctx *ctx, const char *message) {
    if (!ctx->is_tool_call) { /* outside tools/call, a bad argument is a protocol error */
        smcp_error(ctx, SMCP_INVALID_PARAMS, message);
        return;
    }
    ctx->tool_is_error = true;
    smcp_tool_text(ctx, message);
}

void smcp_tool_structured(smcp_ctx *ctx, const char *json, size_t n) {
    ctx->structured = json;
    ctx->structured_len = n;
    smcp_tool_textn(ctx, json, n);
}

static void arg_error(smcp_ctx *ctx, const char *name, const char *type, bool missing) {
    smcp_buf *m = smcp_buf_new(96);
    if (m == NULL) {
        return;
    }
    smcp_buf_puts(m, missing ? "missing required argument '" : "argument '");
    smcp_buf_puts(m, name);
    smcp_buf_puts(m, missing ? "' (" : "' must be ");
    smcp_buf_puts(m, type);
    smcp_buf_puts(m, missing ? ")" : "");
    const char *s = smcp_buf_cstr(m);
    smcp_tool_error(ctx, s != NULL ? s : "invalid argument");
}

/* The argument, or NULL when absent or null. */
static const smcp_json *arg(const smcp_json *args, const char *name) {
    const smcp_json *v = smcp_json_get(args, name);
    return (v == NULL || v->type == SMCP_JSON_NULL) ? NULL : v;
}

const char *smcp_arg_str(smcp_ctx *ctx, const smcp_json *args, const char *name) {
    const smcp_json *v = arg(args, name);
    if (v == NULL || v->type != SMCP_JSON_STRING) {
        arg_error(ctx, name, "a string", v == NULL);
        return NULL;
    }
    return v->str;
}

const char *smcp_arg_str_opt(smcp_ctx *ctx, const smcp_json *args, const char *name,
                             const char *dflt) {
    const smcp_json *v = arg(args, name);
    if (v == NULL) {
        return dflt;
    }
    if (v->type != SMCP_JSON_STRING) {
        arg_error(ctx, name, "a string", false);
        return NULL;
    }
    return v->str;
}

bool smcp_arg_int(smcp_ctx *ctx, const smcp_json *args, const char *name, int64_t *out) {
    const smcp_json *v = arg(args, name);
    if (!smcp_json_int(v, out)) {
        arg_error(ctx, name, "an integer", v == NULL);
        return false;
    }
    return true;
}

bool smcp_arg_int_opt(smcp_ctx *ctx, const smcp_json *args, const char *name, int64_t *out,
                      int64_t dflt) {
    if (arg(args, name) == NULL) {
        *out = dflt;
        return true;
    }
    return smcp_arg_int(ctx, args, name, out);
}

bool smcp_arg_double(smcp_ctx *ctx, const smcp_json *args, const char *name, double *out) {
    const smcp_json *v = arg(args, name);
    if (!smcp_json_double(v, out)) {
        arg_error(ctx, name, "a number", v == NULL);
        return false;
    }
    return true;
}

bool smcp_arg_bool_opt(smcp_ctx *ctx, const smcp_json *args, const char *name, bool *out,
                       bool dflt) {
    const smcp_json *v = arg(args, name);
    if (v == NULL) {
        *out = dflt;
        return true;
    }
    if (!smcp_json_bool(v, out)) {
        arg_error(ctx, name, "true or false", false);
        return false;
    }
    return true;
}

/* --- prompts, resources, completions ---------------------------------------------------------- */

void smcp_prompt_messagen(smcp_ctx *ctx, const char *role, const char *text, size_t n) {
    if (!smcp__begin(ctx, K_PROMPT)) {
        return;
    }
    smcp_buf *w = ctx->out;
    smcp_w_obj(w);
    smcp_w_kstr(w, "role", role);
    smcp_w_key(w, "content");
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "text");
    smcp_w_key(w, "text");
    smcp_w_strn(w, text, n);
    smcp_w_obj_end(w);
    smcp_w_obj_end(w);
}

void smcp_prompt_message(smcp_ctx *ctx, const char *role, const char *text) {
    smcp_prompt_messagen(ctx, role, text, strlen(text));
}

static void write_resource(smcp_buf *w, const smcp_resource *r) {
    smcp_w_obj(w);
    smcp_w_kstr(w, "uri", r->uri);
    smcp_w_kstr(w, "name", r->name != NULL ? r->name : r->uri);
    if (r->title != NULL) {
        smcp_w_kstr(w, "title", r->title);
    }
    if (r->description != NULL) {
        smcp_w_kstr(w, "description", r->description);
    }
    if (r->mime_type != NULL) {
        smcp_w_kstr(w, "mimeType", r->mime_type);
    }
    smcp_w_obj_end(w);
}

void smcp_resource_add(smcp_ctx *ctx, const smcp_resource *resource) {
    if (smcp__begin(ctx, K_LIST)) {
        write_resource(ctx->out, resource);
    }
}

void smcp_resource_text(smcp_ctx *ctx, const char *uri, const char *mime_type, const char *text,
                        size_t n) {
    if (!smcp__begin(ctx, K_READ)) {
        return;
    }
    smcp_buf *w = ctx->out;
    smcp_w_obj(w);
    smcp_w_kstr(w, "uri", uri);
    if (mime_type != NULL) {
        smcp_w_kstr(w, "mimeType", mime_type);
    }
    smcp_w_key(w, "text");
    smcp_w_strn(w, text, n);
    smcp_w_obj_end(w);
}

void smcp_resource_not_found(smcp_ctx *ctx, const char *uri) {
    smcp_buf *d = smcp_buf_new(64);
    const char *data = NULL;
    if (d != NULL) {
        smcp_w_obj(d);
        smcp_w_kstr(d, "uri", uri);
        smcp_w_obj_end(d);
        data = smcp_buf_cstr(d);
    }
    smcp_error_data(ctx, SMCP_INVALID_PARAMS, smcp__cat3("resource not found: ", uri, ""), data);
}

void smcp_completion_add(smcp_ctx *ctx, const char *value) {
    if (!smcp__begin(ctx, K_COMPLETE)) {
        return;
    }
    if (++ctx->ncompletions <= MAX_COMPLETIONS) {
        smcp_w_str(ctx->out, value);
    }
}

/* --- notifications ---------------------------------------------------------------------------- */

/* Starts {"jsonrpc":"2.0","method":M,"params":{ in a scratch buffer. */
static bool notification_begin(smcp_buf *b, const char *method) {
    memset(b, 0, sizeof *b);
    b->cap = 256;
    b->data = smcp__alloc_raw(b->cap);
    if (b->data == NULL) {
        return false;
    }
    smcp_w_obj(b);
    smcp_w_kstr(b, "jsonrpc", "2.0");
    smcp_w_kstr(b, "method", method);
    smcp_w_key(b, "params");
    smcp_w_obj(b);
    return true;
}

static void notification_send(smcp_buf *b) {
    smcp_w_obj_end(b);
    smcp_w_obj_end(b);
    if (!b->failed) {
        smcp_notify(b->data, b->len);
    }
    smcp__release(b->data);
}

bool smcp_progress(smcp_ctx *ctx, double progress, double total, const char *message) {
    smcp_buf b;
    if (ctx->progress_token == NULL || !notification_begin(&b, "notifications/progress")) {
        return false;
    }
    smcp_w_key(&b, "progressToken");
    smcp_w_raw(&b, ctx->progress_token->raw, ctx->progress_token->raw_len);
    smcp_w_kdouble(&b, "progress", progress);
    if (total > 0) {
        smcp_w_kdouble(&b, "total", total);
    }
    if (message != NULL) {
        smcp_w_kstr(&b, "message", message);
    }
    notification_send(&b);
    return true;
}

void smcp_log_message_json(smcp_ctx *ctx, const char *level, const char *logger,
                           const char *data_json, size_t n) {
    (void)ctx;
    smcp_buf b;
    if (!notification_begin(&b, "notifications/message")) {
        return;
    }
    smcp_w_kstr(&b, "level", level);
    if (logger != NULL) {
        smcp_w_kstr(&b, "logger", logger);
    }
    smcp_w_key(&b, "data");
    smcp_w_raw(&b, data_json, n);
    notification_send(&b);
}

void smcp_log_message(smcp_ctx *ctx, const char *level, const char *logger, const char *text) {
    smcp_buf *d = smcp_buf_new(strlen(text) + 8);
    if (d == NULL) {
        return;
    }
    smcp_w_str(d, text);
    if (!d->failed) {
        smcp_log_message_json(ctx, level, logger, d->data, d->len);
    }
}

void smcp_notify_list_changed(const char *list) {
    smcp_buf b;
    if (list != NULL &&
        notification_begin(&b, smcp__cat3("notifications/", list, "/list_changed"))) {
        notification_send(&b);
    }
}

void smcp_notify_resource_updated(const char *uri) {
    smcp_buf b;
    if (uri != NULL && notification_begin(&b, "notifications/resources/updated")) {
        smcp_w_kstr(&b, "uri", uri);
        notification_send(&b);
    }
}
