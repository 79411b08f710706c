/*
 * conformance - the fixtures the official MCP conformance suites call, as an smcp-box tenant:
 * @modelcontextprotocol/conformance 0.1.16 (`--suite all`, handshake era) and 0.2.0-alpha.12
 * (`--requirements 2026-07-28` and `--requirements 2025-11-25`). Names, texts and shapes follow
 * the suites' scenario descriptions; docs/conformance.md maps every scenario to what serves it.
 *
 * Public (auth = "none"): the suites send no credentials. Stateless like every tenant: tools
 * that need the client answer with InputRequiredResult rounds (interactive.c, mrtr.c).
 */
#include "content.h"
#include "interactive.h"
#include "tasks.h"
#include "smcp.h"

/* Waits about ms milliseconds between notifications, as the suites' fixtures describe
 * ("after ~50ms"), so that a host that buffered notifications until the reply would show.
 * smcp_sleep_ms gives the call's run slot up while it waits. */
static void pause_ms(int64_t ms) { smcp_sleep_ms(ms); }

/* --- tools with static results --------------------------------------------------------------- */

static void tool_simple_text(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_tool_text(ctx, "This is a simple text response for testing.");
}

static void tool_image(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_buf *w = tool_result_begin(ctx);
    if (w != NULL) {
        content_image_png(w);
        tool_result_end(w, false);
    }
}

static void tool_audio(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_buf *w = tool_result_begin(ctx);
    if (w != NULL) {
        content_audio_wav(w);
        tool_result_end(w, false);
    }
}

static void tool_embedded_resource(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_buf *w = tool_result_begin(ctx);
    if (w != NULL) {
        content_resource_text(w, "test://embedded-resource", "text/plain",
                              "This is an embedded resource content.");
        tool_result_end(w, false);
    }
}

static void tool_multiple_content(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_buf *w = tool_result_begin(ctx);
    if (w != NULL) {
        content_text(w, "Multiple content types test:");
        content_image_png(w);
        content_resource_text(w, "test://mixed-content-resource", "application/json",
                              "{\"test\":\"data\",\"value\":123}");
        tool_result_end(w, false);
    }
}

static void tool_error(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_tool_error(ctx, "This tool intentionally returns an error for testing");
}

/* --- tools that notify ---------------------------------------------------------------------- */

static void tool_with_logging(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_log_message(ctx, "info", "conformance", "Tool execution started");
    pause_ms(50);
    smcp_log_message(ctx, "info", "conformance", "Tool processing data");
    pause_ms(50);
    smcp_log_message(ctx, "info", "conformance", "Tool execution completed");
    smcp_tool_text(ctx, "Tool with logging executed successfully");
}

/* 2026-07-28: logs without the request opting in (no _meta logLevel); the host must drop
 * them, which is what server-stateless checks. */
static void tool_logging_probe(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_log_message(ctx, "info", "conformance", "test_logging_tool ran");
    smcp_tool_text(ctx, "Logged one info message (delivered only if the request set a level).");
}

static void tool_with_progress(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_progress(ctx, 0, 100, NULL);
    pause_ms(50);
    smcp_progress(ctx, 50, 100, NULL);
    pause_ms(50);
    smcp_progress(ctx, 100, 100, NULL);
    smcp_tool_text(ctx, "Tool with progress executed successfully");
}

/* SEP-1699 (server-sse-polling): the reference server closes the SSE stream mid-call and the
 * client resumes with Last-Event-ID. A module cannot close its stream; the box would have to
 * (docs/conformance.md). Until then this answers after a pause on the open stream. */
static void tool_reconnection(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    pause_ms(100);
    smcp_tool_text(ctx, "Reconnection test completed successfully");
}

/* 2026-07-28 server-stateless: with a subscriptions/listen stream open, these "change" a list
 * and the host must deliver the notification on every listen stream that asked for that type
 * (toolsListChanged / promptsListChanged) and on no other stream. The tables here are static,
 * so nothing really changes; the notification is what the suite observes. The suite calls them
 * because the server declares tools.listChanged and prompts.listChanged (SMCP_SERVER below). */
static void tool_trigger_tool_change(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_notify_list_changed("tools");
    smcp_tool_text(ctx, "Sent notifications/tools/list_changed.");
}

static void tool_trigger_prompt_change(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_notify_list_changed("prompts");
    smcp_tool_text(ctx, "Sent notifications/prompts/list_changed.");
}

/* Resource subscriptions: "changes" test://watched-resource, so that the host delivers
 * notifications/resources/updated to the sessions subscribed to it (resources/subscribe) and
 * to listen streams whose resourceSubscriptions name it. No suite calls it; the box's own
 * end-to-end tests do. */
static void tool_touch_watched_resource(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_notify_resource_updated("test://watched-resource");
    smcp_tool_text(ctx, "Sent notifications/resources/updated for test://watched-resource.");
}

/* --- schema fixtures ------------------------------------------------------------------------ */

static void tool_echo_arguments(smcp_ctx *ctx, const smcp_json *args) {
    const char *json = smcp_json_dump(args, NULL);
    smcp_tool_text(ctx, str3("Received arguments: ", json != NULL ? json : "{}", ""));
}

static void tool_x_mcp_header(smcp_ctx *ctx, const smcp_json *args) {
    const char *region = smcp_arg_str(ctx, args, "region");
    if (region != NULL) {
        smcp_tool_text(ctx, str3("region: ", region, ""));
    }
}

static const char NO_ARGS[] = SMCP_JSON({"type": "object", "properties": {}});

static const smcp_tool tools[] = {
    {.name = "test_simple_text", .description = "Returns a simple text response.",
     .input_schema = NO_ARGS, .call = tool_simple_text},
    {.name = "test_image_content", .description = "Returns a 1x1 red PNG as image content.",
     .input_schema = NO_ARGS, .call = tool_image},
    {.name = "test_audio_content", .description = "Returns a short WAV clip as audio content.",
     .input_schema = NO_ARGS, .call = tool_audio},
    {.name = "test_embedded_resource", .description = "Returns an embedded text resource.",
     .input_schema = NO_ARGS, .call = tool_embedded_resource},
    {.name = "test_multiple_content_types",
     .description = "Returns text, image and embedded resource content together.",
     .input_schema = NO_ARGS, .call = tool_multiple_content},
    {.name = "test_tool_with_logging",
     .description = "Sends three info log messages about 50 ms apart, then answers.",
     .input_schema = NO_ARGS, .call = tool_with_logging},
    {.name = "test_tool_with_progress",
     .description = "Reports progress 0, 50 and 100 of 100 about 50 ms apart, then answers.",
     .input_schema = NO_ARGS, .call = tool_with_progress},
    {.name = "test_error_handling", .description = "Always fails with a tool error (isError).",
     .input_schema = NO_ARGS, .call = tool_error},
    {.name = "test_reconnection",
     .description = "Answers after 100 ms; used by the SSE polling scenario.",
     .input_schema = NO_ARGS, .call = tool_reconnection},
    {.name = "test_sampling",
     .description = "Asks the client's model to answer the prompt (sampling/createMessage).",
     .input_schema = SMCP_JSON({"type": "object",
                                "properties": {"prompt": {"type": "string",
                                                          "description": "The prompt to send"}},
                                "required": ["prompt"]}),
     .call = tool_sampling},
    {.name = "test_elicitation",
     .description = "Asks the user for a username and an email (elicitation/create).",
     .input_schema = SMCP_JSON({"type": "object",
                                "properties": {"message": {"type": "string",
                                                           "description": "Shown to the user"}},
                                "required": ["message"]}),
     .call = tool_elicitation},
    {.name = "test_elicitation_sep1034_defaults",
     .description = "Elicits a form whose fields all have default values (SEP-1034).",
     .input_schema = NO_ARGS, .call = tool_elicitation_defaults},
    {.name = "test_elicitation_sep1330_enums",
     .description = "Elicits a form with the five enum styles of SEP-1330.",
     .input_schema = NO_ARGS, .call = tool_elicitation_enums},
    /* SEP-1613 and SEP-2106: the host must pass every 2020-12 keyword through untouched. */
    {.name = "json_schema_2020_12_tool",
     .description = "Tool with JSON Schema 2020-12 features",
     .input_schema = SMCP_JSON({
         "$schema": "https://json-schema.org/draft/2020-12/schema",
         "type": "object",
         "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                               "properties": {"street": {"type": "string"},
                                              "city": {"type": "string"}}}},
         "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                        "phone": {"type": "string"}, "email": {"type": "string"}},
         "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
         "if": {"properties": {"contactMethod": {"const": "phone"}},
                "required": ["contactMethod"]},
         "then": {"required": ["phone"]},
         "else": {"required": ["email"]},
         "additionalProperties": false}),
     .call = tool_echo_arguments},
    {.name = "test_x_mcp_header",
     .description = "Echoes its region argument, which clients also send as the "
                    "Mcp-Param-Region header (x-mcp-header, SEP-2243).",
     .input_schema = SMCP_JSON({"type": "object",
                                "properties": {"region": {"type": "string",
                                                          "description": "A region name",
                                                          "x-mcp-header": "Region"}},
                                "required": ["region"]}),
     .call = tool_x_mcp_header},
    {.name = "test_logging_tool",
     .description = "Sends an info log message; hosts deliver it only to requests that set "
                    "a log level.",
     .input_schema = NO_ARGS, .call = tool_logging_probe},
    {.name = "test_trigger_tool_change",
     .description = "Announces that the tool list changed (notifications/tools/list_changed).",
     .input_schema = NO_ARGS, .call = tool_trigger_tool_change},
    {.name = "test_trigger_prompt_change",
     .description = "Announces that the prompt list changed "
                    "(notifications/prompts/list_changed).",
     .input_schema = NO_ARGS, .call = tool_trigger_prompt_change},
    {.name = "test_touch_watched_resource",
     .description = "Announces that test://watched-resource changed "
                    "(notifications/resources/updated).",
     .input_schema = NO_ARGS, .call = tool_touch_watched_resource},
    {.name = "test_missing_capability",
     .description = "Needs the client's sampling capability (-32021 without it).",
     .input_schema = NO_ARGS, .call = tool_missing_capability},
    {.name = "test_streaming_elicitation",
     .description = "Asks the user to confirm through an InputRequiredResult.",
     .input_schema = NO_ARGS, .call = tool_streaming_elicitation},
    {.name = "test_input_required_result_elicitation",
     .description = "Asks the user's name (elicitation), then greets them.",
     .input_schema = NO_ARGS, .call = tool_irr_elicitation},
    {.name = "test_input_required_result_sampling",
     .description = "Asks the client's model a question (sampling), then reports the answer.",
     .input_schema = NO_ARGS, .call = tool_irr_sampling},
    {.name = "test_input_required_result_list_roots",
     .description = "Asks for the client's roots, then lists them.",
     .input_schema = NO_ARGS, .call = tool_irr_list_roots},
    {.name = "test_input_required_result_request_state",
     .description = "Asks for a confirmation with a sealed requestState and verifies it.",
     .input_schema = NO_ARGS, .call = tool_irr_request_state},
    {.name = "test_input_required_result_multiple_inputs",
     .description = "Asks for a name, a sampled greeting and the roots in one round.",
     .input_schema = NO_ARGS, .call = tool_irr_multiple_inputs},
    {.name = "test_input_required_result_multi_round",
     .description = "Asks for a name, then a color, carrying the name in requestState.",
     .input_schema = NO_ARGS, .call = tool_irr_multi_round},
    {.name = "test_input_required_result_tampered_state",
     .description = "Rejects a requestState that fails its integrity check.",
     .input_schema = NO_ARGS, .call = tool_irr_tampered_state},
    {.name = "test_input_required_result_capabilities",
     .description = "Asks only through the capabilities the client declared.",
     .input_schema = NO_ARGS, .call = tool_irr_capabilities},
    /* The tasks extension (tasks.c): task_support is the tool's execution.taskSupport. */
    {.name = "greet", .description = "Greets name (synchronous only).",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"name": {"type": "string"}}}),
     .call = tool_greet},
    {.name = "slow_compute",
     .description = "Waits seconds (0: answers at once), as a task when the client can.",
     .input_schema = SMCP_JSON({"type": "object",
                                "properties": {"seconds": {"type": "integer", "minimum": 0},
                                               "label": {"type": "string"}}}),
     .call = tool_slow_compute, .task_support = "optional"},
    {.name = "failing_job", .description = "A task that reports a tool error after about 1 s.",
     .input_schema = NO_ARGS, .call = tool_failing_job, .task_support = "required"},
    {.name = "protocol_error_job", .description = "A task that fails with a protocol error.",
     .input_schema = NO_ARGS, .call = tool_protocol_error_job, .task_support = "optional"},
    {.name = "confirm_delete",
     .description = "A task that asks the user to confirm deleting filename (elicitation).",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"filename": {"type": "string"}}}),
     .call = tool_confirm_delete, .task_support = "optional"},
    {.name = "multi_input", .description = "A task that asks for two inputs at once.",
     .input_schema = NO_ARGS, .call = tool_multi_input, .task_support = "optional"},
    {.name = "test_tool_with_task",
     .description = "Asks user_name synchronously, then greets them from a task.",
     .input_schema = NO_ARGS, .call = tool_with_task, .task_support = "required"},
};

/* --- resources ------------------------------------------------------------------------------ */

#define TEMPLATE_PREFIX "test://template/"
#define TEMPLATE_SUFFIX "/data"

static void read_static_text(smcp_ctx *ctx, const char *uri) {
    static const char text[] = "This is the content of the static text resource.";
    smcp_resource_text(ctx, uri, "text/plain", text, sizeof text - 1);
}

static void read_static_binary(smcp_ctx *ctx, const char *uri) {
    resource_blob(ctx, uri, "image/png", PNG_RED_PIXEL_B64);
}

static void read_watched(smcp_ctx *ctx, const char *uri) {
    static const char text[] = "Watched resource content.";
    smcp_resource_text(ctx, uri, "text/plain", text, sizeof text - 1);
}

static const smcp_resource resources[] = {
    {.uri = "test://static-text", .name = "static-text", .title = "Static text",
     .description = "A fixed text resource.", .mime_type = "text/plain",
     .read = read_static_text},
    {.uri = "test://static-binary", .name = "static-binary", .title = "Static binary",
     .description = "A fixed PNG image, read as a base64 blob.", .mime_type = "image/png",
     .read = read_static_binary},
    {.uri = "test://watched-resource", .name = "watched-resource", .title = "Watched resource",
     .description = "A resource clients may subscribe to.", .mime_type = "text/plain",
     .read = read_watched},
};

static const smcp_resource_template templates[] = {
    {.uri_template = "test://template/{id}/data", .name = "template-data",
     .title = "Data by id", .description = "JSON data for the id in the URI.",
     .mime_type = "application/json"},
};

/* The {id} of a test://template/{id}/data URI (one non-empty path segment), or NULL. */
static const char *template_id(const char *uri) {
    size_t n = strlen(uri), pre = sizeof TEMPLATE_PREFIX - 1, suf = sizeof TEMPLATE_SUFFIX - 1;
    if (n <= pre + suf || strncmp(uri, TEMPLATE_PREFIX, pre) != 0 ||
        strcmp(uri + n - suf, TEMPLATE_SUFFIX) != 0) {
        return NULL;
    }
    for (size_t i = pre; i < n - suf; i++) {
        if (uri[i] == '/') {
            return NULL;
        }
    }
    return smcp_strndup(uri + pre, n - pre - suf);
}

static void read_template(smcp_ctx *ctx, const char *uri) {
    const char *id = template_id(uri);
    if (id == NULL) {
        return; /* nothing answered: the SDK reports "resource not found" with data.uri */
    }
    smcp_buf *json = buf_new(96);
    smcp_w_obj(json);
    smcp_w_kstr(json, "id", id);
    smcp_w_kbool(json, "templateTest", true);
    smcp_w_kstr(json, "data", str3("Data for ID: ", id, ""));
    smcp_w_obj_end(json);
    smcp_resource_text(ctx, uri, "application/json", json->data, json->len);
}

static bool known_uri(const char *uri) {
    for (size_t i = 0; i < SMCP_COUNT(resources); i++) {
        if (smcp_streq(resources[i].uri, uri)) {
            return true;
        }
    }
    return template_id(uri) != NULL;
}

/* resources/subscribe and resources/unsubscribe reach the module only in the handshake era.
 * The module's part is to say whether the URI is one it serves; the box remembers the
 * subscription per session and delivers the module's notifications/resources/updated to the
 * subscribed sessions (docs/protocol.md). */
static bool on_request(smcp_ctx *ctx) {
    const char *method = smcp_ctx_method(ctx);
    if (!smcp_streq(method, "resources/subscribe") &&
        !smcp_streq(method, "resources/unsubscribe")) {
        return false;
    }
    const char *uri = smcp_json_get_str(smcp_ctx_params(ctx), "uri");
    if (uri == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "params.uri must be a string");
    } else if (!known_uri(uri)) {
        smcp_resource_not_found(ctx, uri);
    } else {
        smcp_w_raw(smcp_result(ctx), "{}", 2);
    }
    return true;
}

/* --- prompts -------------------------------------------------------------------------------- */

static void prompt_simple(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_prompt_message(ctx, "user", "This is a simple prompt for testing.");
}

static void prompt_with_arguments(smcp_ctx *ctx, const smcp_json *args) {
    smcp_buf *b = buf_new(96);
    smcp_buf_puts(b, "Prompt with arguments: arg1='");
    smcp_buf_puts(b, smcp_json_get_str(args, "arg1"));
    smcp_buf_puts(b, "', arg2='");
    smcp_buf_puts(b, smcp_json_get_str(args, "arg2"));
    smcp_buf_puts(b, "'");
    const char *text = smcp_buf_cstr(b);
    smcp_prompt_message(ctx, "user", text != NULL ? text : "out of memory");
}

static void prompt_embedded_resource(smcp_ctx *ctx, const smcp_json *args) {
    smcp_buf *w = prompt_result_begin(ctx, "A prompt that embeds a resource");
    if (w == NULL) {
        return;
    }
    prompt_message_begin(w, "user");
    content_resource_text(w, smcp_json_get_str(args, "resourceUri"), "text/plain",
                          "Embedded resource content for testing.");
    prompt_message_end(w);
    prompt_message_begin(w, "user");
    content_text(w, "Please process the embedded resource above.");
    prompt_message_end(w);
    prompt_result_end(w);
}

static void prompt_with_image(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_buf *w = prompt_result_begin(ctx, "A prompt that shows an image");
    if (w == NULL) {
        return;
    }
    prompt_message_begin(w, "user");
    content_image_png(w);
    prompt_message_end(w);
    prompt_message_begin(w, "user");
    content_text(w, "Please analyze the image above.");
    prompt_message_end(w);
    prompt_result_end(w);
}

static const smcp_prompt_arg two_args[] = {
    {.name = "arg1", .description = "First test argument", .required = true},
    {.name = "arg2", .description = "Second test argument", .required = true},
};
static const smcp_prompt_arg resource_arg[] = {
    {.name = "resourceUri", .description = "URI of the resource to embed", .required = true},
};

static const smcp_prompt prompts[] = {
    {.name = "test_simple_prompt", .description = "A simple prompt without arguments",
     .get = prompt_simple},
    {.name = "test_prompt_with_arguments", .description = "A prompt with two required arguments",
     .args = two_args, .nargs = SMCP_COUNT(two_args), .get = prompt_with_arguments},
    {.name = "test_prompt_with_embedded_resource",
     .description = "A prompt that embeds the resource named by resourceUri",
     .args = resource_arg, .nargs = SMCP_COUNT(resource_arg), .get = prompt_embedded_resource},
    {.name = "test_prompt_with_image", .description = "A prompt with image content",
     .get = prompt_with_image},
    {.name = "test_input_required_result_prompt",
     .description = "A prompt that first asks the user for context (InputRequiredResult)",
     .get = prompt_irr},
};

/* --- completion ----------------------------------------------------------------------------- */

static void offer(smcp_ctx *ctx, const char *const *values, size_t n, const char *typed) {
    size_t len = strlen(typed);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(values[i], typed, len) == 0) {
            smcp_completion_add(ctx, values[i]);
        }
    }
}

static void complete(smcp_ctx *ctx, const smcp_completion_request *req) {
    static const char *const words[] = {"paris", "park", "party", "test", "testing"};
    static const char *const ids[] = {"123", "456", "789"};
    if (smcp_streq(req->ref_type, "ref/prompt") &&
        smcp_streq(req->ref, "test_prompt_with_arguments")) {
        offer(ctx, words, SMCP_COUNT(words), req->value);
    } else if (smcp_streq(req->ref_type, "ref/resource") &&
               smcp_streq(req->ref, "test://template/{id}/data") &&
               smcp_streq(req->argument, "id")) {
        offer(ctx, ids, SMCP_COUNT(ids), req->value);
    }
}

SMCP_SERVER(.name = "conformance", .version = "1.0.0", .title = "MCP conformance fixtures",
            .instructions = "Fixtures for the official MCP conformance suites; not a real "
                            "service.",
            .tools = tools, .ntools = SMCP_COUNT(tools), .resources = resources,
            .nresources = SMCP_COUNT(resources), .read_resource = read_template,
            .templates = templates, .ntemplates = SMCP_COUNT(templates), .prompts = prompts,
            .nprompts = SMCP_COUNT(prompts), .complete = complete, .on_request = on_request,
            .tools_list_changed = true, .prompts_list_changed = true,
            .resources_subscribe = true);
