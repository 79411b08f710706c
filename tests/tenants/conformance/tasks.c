/*
 * tasks.c - the tasks extension fixtures (tasks-* scenarios of the 2026-07-28 suite).
 *
 * How a tool becomes a task here (docs/tasks.md, "Who decides"): the box calls the tool with
 * smcp_task_may_escalate true when the client negotiated the extension; the tool then answers
 * smcp_task_escalate and the box calls it again in the background, where smcp_task_id is set.
 * Waiting is smcp_sleep_ms, which gives the call's run slot up: a 60 s slow_compute uses no
 * processor, and tasks/cancel ends it within a sleep slice.
 */
#include "tasks.h"

#include "content.h"
#include "mrtr.h"

/* The longest slow_compute: its task's wall clock (tenant.toml [tools.slow_compute]) is above. */
#define SLOW_COMPUTE_MAX_S 120

void tool_greet(smcp_ctx *ctx, const smcp_json *args) {
    const char *name = smcp_arg_str_opt(ctx, args, "name", "World");
    if (name == NULL) {
        return;
    }
    smcp_buf *b = buf_new(32);
    smcp_buf_puts(b, "Hello, ");
    smcp_buf_puts(b, name);
    smcp_buf_puts(b, "!");
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}

void tool_slow_compute(smcp_ctx *ctx, const smcp_json *args) {
    int64_t seconds = 0;
    if (!smcp_arg_int_opt(ctx, args, "seconds", &seconds, 0)) {
        return;
    }
    const char *label = smcp_arg_str_opt(ctx, args, "label", "");
    if (label == NULL) {
        return;
    }
    if (seconds < 0 || seconds > SLOW_COMPUTE_MAX_S) {
        smcp_error(ctx, SMCP_INVALID_PARAMS, "Invalid params: seconds must be 0..120");
        return;
    }
    /* seconds = 0 answers at once (the immediate-result shortcut); anything longer is a task
     * when the client can take one. */
    if (seconds > 0 && smcp_task_may_escalate(ctx)) {
        smcp_task_escalate(ctx);
        return;
    }
    smcp_sleep_ms(seconds * 1000);
    smcp_buf *b = buf_new(64);
    smcp_buf_puts(b, "Computed ");
    smcp_buf_puts(b, label);
    smcp_buf_puts(b, " after ");
    smcp_buf_put_int(b, seconds);
    smcp_buf_puts(b, " s");
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}

void tool_failing_job(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    if (smcp_task_may_escalate(ctx)) {
        smcp_task_escalate(ctx);
        return;
    }
    smcp_sleep_ms(1000);
    smcp_tool_error(ctx, "failing_job: the job ran and failed (a tool execution error)");
}

void tool_protocol_error_job(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    if (smcp_task_may_escalate(ctx)) {
        smcp_task_escalate(ctx);
        return;
    }
    smcp_error(ctx, SMCP_INTERNAL_ERROR, "protocol_error_job: the job crashed (a protocol error)");
}

static const char CONFIRM_SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"confirm\":{\"type\":\"boolean\"}},"
    "\"required\":[\"confirm\"]}";
static const char NAME_SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}";

/* Whether the answer under key accepted with content[field] true. */
static bool accepted_true(const smcp_json *responses, const char *key, const char *field) {
    const smcp_json *answer = smcp_json_get(responses, key);
    const smcp_json *content = smcp_json_get(answer, "content");
    bool value = false;
    return smcp_streq(smcp_json_get_str(answer, "action"), "accept") &&
           smcp_json_get_bool(content, field, &value) && value;
}

void tool_confirm_delete(smcp_ctx *ctx, const smcp_json *args) {
    const char *filename = smcp_arg_str_opt(ctx, args, "filename", "file.txt");
    if (filename == NULL) {
        return;
    }
    if (smcp_task_may_escalate(ctx)) {
        smcp_task_escalate(ctx);
        return;
    }
    const smcp_json *responses = NULL;
    if (!input_responses(ctx, &responses)) {
        return;
    }
    if (smcp_json_get(responses, "confirm") == NULL) {
        smcp_buf *w = input_required_begin(ctx);
        if (w != NULL) {
            input_elicit(w, "confirm", "Delete this file?", CONFIRM_SCHEMA);
            input_required_end(w, NULL);
        }
        return;
    }
    smcp_buf *b = buf_new(64);
    smcp_buf_puts(b, accepted_true(responses, "confirm", "confirm") ? "Deleted " : "Kept ");
    smcp_buf_puts(b, filename);
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}

void tool_multi_input(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    if (smcp_task_may_escalate(ctx)) {
        smcp_task_escalate(ctx);
        return;
    }
    const smcp_json *responses = NULL;
    if (!input_responses(ctx, &responses)) {
        return;
    }
    const smcp_json *name = smcp_json_get(responses, "name");
    const smcp_json *confirm = smcp_json_get(responses, "confirm");
    if (name == NULL || confirm == NULL) {
        /* Both at once, so a client may answer them one at a time (partial fulfilment). */
        smcp_buf *w = input_required_begin(ctx);
        if (w != NULL) {
            input_elicit(w, "name", "Your name?", NAME_SCHEMA);
            input_elicit(w, "confirm", "Proceed?", CONFIRM_SCHEMA);
            input_required_end(w, NULL);
        }
        return;
    }
    const char *who = smcp_json_get_str(smcp_json_get(name, "content"), "name");
    smcp_buf *b = buf_new(64);
    smcp_buf_puts(b, "Got name=");
    smcp_buf_puts(b, who != NULL ? who : "?");
    smcp_buf_puts(b, accepted_true(responses, "confirm", "confirm") ? ", confirmed" : ", declined");
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}

/* The MRTR -> task composition: a synchronous round for user_name, then a task on the final
 * round, whose params (and so the answer) the box carries into the task. */
void tool_with_task(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    const smcp_json *responses = NULL;
    if (!input_responses(ctx, &responses)) {
        return;
    }
    const smcp_json *content = NULL;
    bool bad = false;
    const char *action = elicit_answer(ctx, responses, "user_name", &content, &bad);
    if (bad) {
        return;
    }
    if (action == NULL) {
        smcp_buf *w = input_required_begin(ctx);
        if (w != NULL) {
            input_elicit(w, "user_name", "What is your name?", NAME_SCHEMA);
            input_required_end(w, NULL);
        }
        return;
    }
    if (smcp_task_may_escalate(ctx)) {
        smcp_task_escalate(ctx);
        return;
    }
    const char *name = smcp_json_get_str(content, "name");
    smcp_buf *b = buf_new(64);
    smcp_buf_puts(b, "Hello, ");
    smcp_buf_puts(b, name != NULL ? name : "stranger");
    smcp_buf_puts(b, "! (from a task)");
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}
