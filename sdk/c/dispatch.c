/*
 * dispatch.c - the smcp_handle export: validates the JSON-RPC envelope and routes MCP methods
 * to what the tenant declared in smcp_server_def.
 */
#include "smcp_internal.h"

static const smcp_json empty_object = {.type = SMCP_JSON_OBJECT, .raw = "{}", .raw_len = 2};

#define S (&smcp_server_def)

static bool has_resources(void) {
    return S->nresources > 0 || S->list_resources != NULL || S->read_resource != NULL ||
           S->ntemplates > 0;
}

/* Writes schema text as a checked JSON value; a tenant's typo becomes a clear error. */
static bool write_schema(smcp_ctx *ctx, const char *tool, const char *field, const char *json) {
    const char *err = NULL;
    const smcp_json *v = smcp_json_parse(json, strlen(json), &err);
    if (v == NULL || v->type != SMCP_JSON_OBJECT) {
        smcp_buf *m = smcp_buf_new(128);
        if (m != NULL) {
            smcp_buf_puts(m, "tenant bug: tool '");
            smcp_buf_puts(m, tool);
            smcp_buf_puts(m, "' has an invalid ");
            smcp_buf_puts(m, field);
            smcp_buf_puts(m, v == NULL ? ": " : ": not a JSON object");
            smcp_buf_puts(m, v == NULL ? err : "");
        }
        smcp_error(ctx, SMCP_INTERNAL_ERROR, m != NULL ? smcp_buf_cstr(m) : "invalid schema");
        return false;
    }
    smcp_w_key(ctx->out, field);
    smcp_w_value(ctx->out, v);
    return true;
}

static void do_initialize(smcp_ctx *ctx) {
    smcp_buf *w = smcp_result(ctx);
    const char *version = smcp_json_get_str(ctx->params, "protocolVersion");
    smcp_w_obj(w);
    smcp_w_kstr(w, "protocolVersion", version != NULL ? version : DEFAULT_PROTOCOL);
    smcp_w_key(w, "capabilities");
    smcp_w_obj(w);
    if (S->ntools > 0) {
        smcp_w_key(w, "tools");
        smcp_w_obj(w);
        smcp_w_kbool(w, "listChanged", S->tools_list_changed);
        smcp_w_obj_end(w);
    }
    if (has_resources()) {
        smcp_w_key(w, "resources");
        smcp_w_obj(w);
        smcp_w_kbool(w, "subscribe", S->resources_subscribe);
        smcp_w_kbool(w, "listChanged", S->resources_list_changed);
        smcp_w_obj_end(w);
    }
    if (S->nprompts > 0) {
        smcp_w_key(w, "prompts");
        smcp_w_obj(w);
        smcp_w_kbool(w, "listChanged", S->prompts_list_changed);
        smcp_w_obj_end(w);
    }
    if (S->complete != NULL) {
        smcp_w_key(w, "completions");
        smcp_w_obj(w);
        smcp_w_obj_end(w);
    }
    smcp_w_obj_end(w);
    smcp_w_key(w, "serverInfo");
    smcp_w_obj(w);
    smcp_w_kstr(w, "name", S->name != NULL ? S->name : "tenant");
    smcp_w_kstr(w, "version", S->version != NULL ? S->version : "0.0.0");
    if (S->title != NULL) {
        smcp_w_kstr(w, "title", S->title);
    }
    smcp_w_obj_end(w);
    if (S->instructions != NULL) {
        smcp_w_kstr(w, "instructions", S->instructions);
    }
    smcp_w_obj_end(w);
}

static void do_tools_list(smcp_ctx *ctx) {
    smcp_buf *w = smcp_result(ctx);
    smcp_w_obj(w);
    smcp_w_key(w, "tools");
    smcp_w_arr(w);
    for (size_t i = 0; i < S->ntools; i++) {
        const smcp_tool *t = &S->tools[i];
        smcp_w_obj(w);
        smcp_w_kstr(w, "name", t->name);
        if (t->title != NULL) {
            smcp_w_kstr(w, "title", t->title);
        }
        smcp_w_kstr(w, "description", t->description != NULL ? t->description : "");
        if (!write_schema(ctx, t->name, "inputSchema",
                          t->input_schema != NULL ? t->input_schema : "{\"type\":\"object\"}") ||
            (t->output_schema != NULL &&
             !write_schema(ctx, t->name, "outputSchema", t->output_schema)) ||
            (t->annotations != NULL &&
             !write_schema(ctx, t->name, "annotations", t->annotations))) {
            return;
        }
        if (t->task_support != NULL) {
            smcp_w_key(w, "execution");
            smcp_w_obj(w);
            smcp_w_kstr(w, "taskSupport", t->task_support);
            smcp_w_obj_end(w);
        }
        smcp_w_obj_end(w);
    }
    smcp_w_arr_end(w);
    smcp_w_obj_end(w);
}

/* `arguments` of tools/call and prompts/get: an object, or absent; NULL after an error. */
static const smcp_json *arguments(smcp_ctx *ctx) {
    const smcp_json *a = smcp_json_get(ctx->params, "arguments");
    if (a == NULL || a->type == SMCP_JSON_NULL) {
        return &empty_object;
    }
    if (a->type != SMCP_JSON_OBJECT) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "params.arguments must be an object");
        return NULL;
    }
    return a;
}

static void do_tools_call(smcp_ctx *ctx) {
    const char *name = smcp_json_get_str(ctx->params, "name");
    if (name == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "params.name (the tool's name) must be a string");
        return;
    }
    const smcp_json *args = arguments(ctx);
    if (args == NULL) {
        return;
    }
    for (size_t i = 0; i < S->ntools; i++) {
        if (smcp_streq(S->tools[i].name, name)) {
            ctx->is_tool_call = true;
            S->tools[i].call(ctx, args);
            if (!ctx->started) {
                smcp_error(ctx, SMCP_INTERNAL_ERROR,
                           smcp__cat3("tenant bug: tool '", name, "' returned no result"));
            }
            return;
        }
    }
    smcp_error(ctx, SMCP_INVALID_PARAMS,
               smcp__cat3("unknown tool '", name, "'; tools/list names the available tools"));
}

static void do_resources_list(smcp_ctx *ctx) {
    smcp__begin(ctx, K_LIST);
    for (size_t i = 0; i < S->nresources; i++) {
        smcp_resource_add(ctx, &S->resources[i]);
    }
    if (S->list_resources != NULL) {
        S->list_resources(ctx);
    }
}

static void do_resources_read(smcp_ctx *ctx) {
    const char *uri = smcp_json_get_str(ctx->params, "uri");
    if (uri == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "params.uri must be a string");
        return;
    }
    bool handled = false;
    for (size_t i = 0; i < S->nresources && !handled; i++) {
        if (smcp_streq(S->resources[i].uri, uri) && S->resources[i].read != NULL) {
            S->resources[i].read(ctx, uri);
            handled = true;
        }
    }
    if (!handled && S->read_resource != NULL) {
        S->read_resource(ctx, uri);
    }
    if (!ctx->started) {
        smcp_resource_not_found(ctx, uri);
    }
}

static void do_templates_list(smcp_ctx *ctx) {
    smcp_buf *w = smcp_result(ctx);
    smcp_w_obj(w);
    smcp_w_key(w, "resourceTemplates");
    smcp_w_arr(w);
    for (size_t i = 0; i < S->ntemplates; i++) {
        const smcp_resource_template *t = &S->templates[i];
        smcp_w_obj(w);
        smcp_w_kstr(w, "uriTemplate", t->uri_template);
        smcp_w_kstr(w, "name", t->name != NULL ? t->name : t->uri_template);
        if (t->title != NULL) {
            smcp_w_kstr(w, "title", t->title);
        }
        if (t->description != NULL) {
            smcp_w_kstr(w, "description", t->description);
        }
        if (t->mime_type != NULL) {
            smcp_w_kstr(w, "mimeType", t->mime_type);
        }
        smcp_w_obj_end(w);
    }
    smcp_w_arr_end(w);
    smcp_w_obj_end(w);
}

static void do_prompts_list(smcp_ctx *ctx) {
    smcp_buf *w = smcp_result(ctx);
    smcp_w_obj(w);
    smcp_w_key(w, "prompts");
    smcp_w_arr(w);
    for (size_t i = 0; i < S->nprompts; i++) {
        const smcp_prompt *p = &S->prompts[i];
        smcp_w_obj(w);
        smcp_w_kstr(w, "name", p->name);
        if (p->title != NULL) {
            smcp_w_kstr(w, "title", p->title);
        }
        if (p->description != NULL) {
            smcp_w_kstr(w, "description", p->description);
        }
        smcp_w_key(w, "arguments");
        smcp_w_arr(w);
        for (size_t j = 0; j < p->nargs; j++) {
            smcp_w_obj(w);
            smcp_w_kstr(w, "name", p->args[j].name);
            if (p->args[j].description != NULL) {
                smcp_w_kstr(w, "description", p->args[j].description);
            }
            smcp_w_kbool(w, "required", p->args[j].required);
            smcp_w_obj_end(w);
        }
        smcp_w_arr_end(w);
        smcp_w_obj_end(w);
    }
    smcp_w_arr_end(w);
    smcp_w_obj_end(w);
}

static void do_prompts_get(smcp_ctx *ctx) {
    const char *name = smcp_json_get_str(ctx->params, "name");
    if (name == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "params.name (the prompt's name) must be a string");
        return;
    }
    const smcp_prompt *p = NULL;
    for (size_t i = 0; i < S->nprompts && p == NULL; i++) {
        if (smcp_streq(S->prompts[i].name, name)) {
            p = &S->prompts[i];
        }
    }
    if (p == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS,
                   smcp__cat3("unknown prompt '", name, "'; prompts/list names the prompts"));
        return;
    }
    const smcp_json *args = arguments(ctx);
    if (args == NULL) {
        return;
    }
    for (const smcp_json *a = args->child; a != NULL; a = a->next) {
        if (a->type != SMCP_JSON_STRING) {
            smcp_error(ctx, SMCP_INVALID_PARAMS,
                       smcp__cat3("prompt argument '", a->key, "' must be a string"));
            return;
        }
    }
    for (size_t j = 0; j < p->nargs; j++) {
        if (p->args[j].required && smcp_json_get_str(args, p->args[j].name) == NULL) {
            smcp_error(ctx, SMCP_INVALID_PARAMS,
                       smcp__cat3("missing required prompt argument '", p->args[j].name, "'"));
            return;
        }
    }
    ctx->prompt = p;
    p->get(ctx, args);
    smcp__begin(ctx, K_PROMPT); /* a prompt without messages still answers */
}

static void do_complete(smcp_ctx *ctx) {
    const smcp_json *ref = smcp_json_get(ctx->params, "ref");
    const smcp_json *argument = smcp_json_get(ctx->params, "argument");
    smcp_completion_request req = {
        .ref_type = smcp_json_get_str(ref, "type"),
        .argument = smcp_json_get_str(argument, "name"),
        .value = smcp_json_get_str(argument, "value"),
        .arguments = smcp_json_get(smcp_json_get(ctx->params, "context"), "arguments"),
    };
    if (smcp_streq(req.ref_type, "ref/prompt")) {
        req.ref = smcp_json_get_str(ref, "name");
    } else if (smcp_streq(req.ref_type, "ref/resource")) {
        req.ref = smcp_json_get_str(ref, "uri");
    }
    if (req.ref == NULL || req.argument == NULL || req.value == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS,
                   "completion/complete needs ref {type: ref/prompt + name | ref/resource + uri} "
                   "and argument {name, value} (strings)");
        return;
    }
    S->complete(ctx, &req);
    smcp__begin(ctx, K_COMPLETE); /* no suggestions is an empty list, not an error */
}

static void route(smcp_ctx *ctx) {
    const char *m = ctx->method;
    if (ctx->params != NULL && ctx->params->type != SMCP_JSON_OBJECT) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "params must be an object");
    } else if (smcp_streq(m, "initialize")) {
        do_initialize(ctx);
    } else if (smcp_streq(m, "ping")) {
        smcp_w_raw(smcp_result(ctx), "{}", 2);
    } else if (S->ntools > 0 && smcp_streq(m, "tools/list")) {
        do_tools_list(ctx);
    } else if (S->ntools > 0 && smcp_streq(m, "tools/call")) {
        do_tools_call(ctx);
    } else if (has_resources() && smcp_streq(m, "resources/list")) {
        do_resources_list(ctx);
    } else if (has_resources() && smcp_streq(m, "resources/read")) {
        do_resources_read(ctx);
    } else if (has_resources() && smcp_streq(m, "resources/templates/list")) {
        do_templates_list(ctx);
    } else if (S->nprompts > 0 && smcp_streq(m, "prompts/list")) {
        do_prompts_list(ctx);
    } else if (S->nprompts > 0 && smcp_streq(m, "prompts/get")) {
        do_prompts_get(ctx);
    } else if (S->complete != NULL && smcp_streq(m, "completion/complete")) {
        do_complete(ctx);
    } else if (S->on_request == NULL || !S->on_request(ctx)) {
        smcp_error(ctx, SMCP_METHOD_NOT_FOUND,
                   smcp__cat3("method '", m, "' is not supported by this tenant"));
    }
}

/* --- the export ------------------------------------------------------------------------------- */

/* Written without the arena: the answer when the arena itself is exhausted. */
#define OOM_MAX_ID 512 /* longer ids are answered as null in the out-of-memory reply */
static char oom_reply[OOM_MAX_ID + 160];

static uint64_t pack(const char *p, size_t n) {
    return ((uint64_t)(uint32_t)(uintptr_t)p << 32) | (uint32_t)n;
}

static uint64_t out_of_memory(const smcp_json *id) {
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":";
    static const char tail[] = ",\"error\":{\"code\":-32603,\"message\":\"out of memory: the "
                               "request needed more than the tenant's memory limit\"}}";
    size_t n = sizeof head - 1;
    memcpy(oom_reply, head, n);
    if (id != NULL && id->raw_len <= OOM_MAX_ID) {
        memcpy(oom_reply + n, id->raw, id->raw_len);
        n += id->raw_len;
    } else {
        memcpy(oom_reply + n, "null", 4);
        n += 4;
    }
    memcpy(oom_reply + n, tail, sizeof tail - 1);
    return pack(oom_reply, n + sizeof tail - 1);
}

/* A reply with an error and (possibly) no usable id; NULL id writes null. */
static uint64_t envelope_error(const smcp_json *id, int code, const char *what,
                               const char *detail) {
    smcp_buf *w = smcp_buf_new(160);
    if (w == NULL) {
        return out_of_memory(id);
    }
    smcp_w_obj(w);
    smcp_w_kstr(w, "jsonrpc", "2.0");
    smcp_w_key(w, "id");
    if (id != NULL) {
        smcp_w_raw(w, id->raw, id->raw_len);
    } else {
        smcp_w_null(w);
    }
    smcp_w_key(w, "error");
    smcp_w_obj(w);
    smcp_w_kint(w, "code", code);
    smcp_w_kstr(w, "message", smcp__cat3(what, detail != NULL ? ": " : "", detail ? detail : ""));
    smcp_w_obj_end(w);
    smcp_w_obj_end(w);
    return (w->failed || smcp__oom()) ? out_of_memory(id) : pack(w->data, w->len);
}

static bool valid_id(const smcp_json *id) {
    return id != NULL && (id->type == SMCP_JSON_STRING || id->type == SMCP_JSON_NUMBER);
}

static uint64_t handle(const char *text, size_t len) {
    const char *err = NULL;
    const smcp_json *msg = smcp_json_parse(text, len, &err);
    if (msg == NULL) {
        return smcp__oom() ? out_of_memory(NULL)
                           : envelope_error(NULL, SMCP_PARSE_ERROR, "Parse error", err);
    }
    if (msg->type != SMCP_JSON_OBJECT) {
        return envelope_error(NULL, SMCP_INVALID_REQUEST, "Invalid Request",
                              msg->type == SMCP_JSON_ARRAY
                                  ? "batches are not supported; send one message at a time"
                                  : "a JSON-RPC message must be a JSON object");
    }
    const smcp_json *id = smcp_json_get(msg, "id");
    const smcp_json *method = smcp_json_get(msg, "method");
    if (method == NULL && id != NULL &&
        (smcp_json_get(msg, "result") != NULL || smcp_json_get(msg, "error") != NULL)) {
        return 0; /* a response to a request we never sent: nothing to answer */
    }
    if (id != NULL && !valid_id(id)) {
        return envelope_error(NULL, SMCP_INVALID_REQUEST, "Invalid Request",
                              "id must be a string or a number");
    }
    if (!smcp_streq(smcp_json_get_str(msg, "jsonrpc"), "2.0") || smcp_json_str(method) == NULL) {
        return envelope_error(id, SMCP_INVALID_REQUEST, "Invalid Request",
                              "expected jsonrpc \"2.0\" and a string method");
    }
    const smcp_json *params = smcp_json_get(msg, "params");
    if (id == NULL) {
        if (S->on_notification != NULL) {
            S->on_notification(method->str, params);
        }
        return 0;
    }
    smcp_ctx ctx = {.method = method->str, .params = params, .id = id};
    ctx.meta = smcp_json_get(params, "_meta");
    const smcp_json *token = smcp_json_get(ctx.meta, "progressToken");
    if (valid_id(token)) {
        ctx.progress_token = token;
    }
    ctx.out = smcp_buf_new(len < 256 ? 512 : len * 2);
    if (ctx.out == NULL) {
        return out_of_memory(id);
    }
    smcp_w_obj(ctx.out);
    smcp_w_kstr(ctx.out, "jsonrpc", "2.0");
    smcp_w_key(ctx.out, "id");
    smcp_w_raw(ctx.out, id->raw, id->raw_len);
    ctx.mark = *ctx.out;
    route(&ctx);
    smcp__finish(&ctx);
    smcp_w_obj_end(ctx.out);
    if (ctx.out->failed) {
        return smcp__oom() ? out_of_memory(id)
                           : envelope_error(id, SMCP_INTERNAL_ERROR, "tenant bug",
                                            "the handler wrote malformed JSON (writer misuse)");
    }
    return smcp__oom() ? out_of_memory(id) : pack(ctx.out->data, ctx.out->len);
}

__attribute__((export_name("smcp_handle"))) uint64_t smcp_handle(int32_t ptr, int32_t len) {
    smcp__enter_handle((size_t)(uint32_t)len);
    uint64_t r = handle((const char *)(uintptr_t)ptr, (size_t)(uint32_t)len);
    smcp__leave_handle();
    return r;
}
