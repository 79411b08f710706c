/*
 * {{name}}: an MCP server that runs as a sandboxed smcp-box core module, written in C with the
 * smcp C SDK (smcp.h ships in the smcp-box wheel; `smcp-box build .` compiles every .c file in
 * this folder with it).
 */
#include "smcp.h"

/* tools/call "greet": count how often each name was greeted, in the tenant's kv store. */
static void greet(smcp_ctx *ctx, const smcp_json *args) {
    const char *name = smcp_arg_str(ctx, args, "name"); /* reports isError itself if missing */
    if (name == NULL) {
        return;
    }
    /* Durable state goes to kv, never to C globals: each request may run on another instance. */
    smcp_buf *key = smcp_buf_new(64);
    smcp_buf_puts(key, "greeted:");
    smcp_buf_puts(key, name);
    int64_t count = 0;
    size_t n;
    const char *stored = smcp_kv_get(smcp_buf_cstr(key), &n); /* NULL when absent */
    if (stored != NULL) {
        smcp_json_int(smcp_json_parse(stored, n, NULL), &count);
    }
    count += 1;
    smcp_buf *value = smcp_buf_new(24);
    smcp_buf_put_int(value, count);
    if (smcp_kv_set(smcp_buf_cstr(key), value->data, value->len) != SMCP_KV_OK) {
        smcp_log("warning", "could not count a greeting");
    }
    const char *greeting = smcp_config_get("greeting", NULL); /* [config] greeting, or NULL */
    smcp_buf *text = smcp_buf_new(96);
    smcp_buf_puts(text, greeting != NULL ? greeting : "Hello");
    smcp_buf_puts(text, ", ");
    smcp_buf_puts(text, name);
    smcp_buf_puts(text, "! (greeting number ");
    smcp_buf_put_int(text, count);
    smcp_buf_puts(text, ")");
    smcp_tool_text(ctx, smcp_buf_cstr(text));
}

static void read_about(smcp_ctx *ctx, const char *uri) {
    const char *about = "{{name}}, built from the smcp-box C template.";
    smcp_resource_text(ctx, uri, "text/plain", about, strlen(about));
}

static const smcp_tool tools[] = {
    {.name = "greet",
     .description = "Say hello, and count how often each name was greeted.",
     .input_schema = SMCP_JSON({"type": "object",
                                "properties": {"name": {"type": "string",
                                                        "description": "Who to greet"}},
                                "required": ["name"]}),
     .call = greet},
};

static const smcp_resource resources[] = {
    {.uri = "{{name}}://about", .name = "about", .description = "What this tenant is.",
     .mime_type = "text/plain", .read = read_about},
};

SMCP_SERVER(.name = "{{name}}", .version = "0.1.0",
            .tools = tools, .ntools = SMCP_COUNT(tools),
            .resources = resources, .nresources = SMCP_COUNT(resources));
