/*
 * interactive.c - tools that need the client: each is a function of its arguments and of
 * params.inputResponses / params.requestState, answering either an InputRequiredResult (ask)
 * or its final result. Nothing is kept between rounds.
 */
#include "interactive.h"

#include "content.h"
#include "mrtr.h"

/* --- schemas the suites check field by field ----------------------------------------------- */

static const char USER_INFO_SCHEMA[] = SMCP_JSON({
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"}
    },
    "required": ["username", "email"]
});

/* SEP-1034: a default for every primitive type. */
static const char DEFAULTS_SCHEMA[] = SMCP_JSON({
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {"type": "string", "description": "User status",
                   "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "description": "Verification status", "default": true}
    },
    "required": []
});

/* SEP-1330: the five enum shapes. */
static const char ENUMS_SCHEMA[] = SMCP_JSON({
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": [
            {"const": "value1", "title": "First Option"},
            {"const": "value2", "title": "Second Option"},
            {"const": "value3", "title": "Third Option"}]},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                       "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array",
                          "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "items": {"anyOf": [
            {"const": "value1", "title": "First Choice"},
            {"const": "value2", "title": "Second Choice"},
            {"const": "value3", "title": "Third Choice"}]}}
    },
    "required": []
});

static const char NAME_SCHEMA[] = SMCP_JSON({
    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
static const char COLOR_SCHEMA[] = SMCP_JSON({
    "type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]});
static const char OK_SCHEMA[] = SMCP_JSON({
    "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
static const char CONTEXT_SCHEMA[] = SMCP_JSON({
    "type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]});

/* --- shared steps ----------------------------------------------------------------------------- */

/* Checks the capability the tool needs and reads inputResponses; false once an error is set. */
static bool open_round(smcp_ctx *ctx, const char *capability, const smcp_json **responses) {
    if (capability != NULL && !client_may(ctx, capability)) {
        return missing_capability(ctx, capability);
    }
    return input_responses(ctx, responses);
}

static void ask_elicit(smcp_ctx *ctx, const char *key, const char *message, const char *schema,
                       const char *state) {
    smcp_buf *w = input_required_begin(ctx);
    if (w != NULL) {
        input_elicit(w, key, message, schema);
        input_required_end(w, state);
    }
}

static void ask_sample(smcp_ctx *ctx, const char *key, const char *prompt, int64_t max_tokens) {
    smcp_buf *w = input_required_begin(ctx);
    if (w != NULL) {
        input_sample(w, key, prompt, max_tokens);
        input_required_end(w, NULL);
    }
}

/* A string member of an accepted elicitation's content; -32602 when it is missing. */
static const char *content_str(smcp_ctx *ctx, const smcp_json *content, const char *key,
                               const char *field) {
    const char *s = smcp_json_get_str(content, field);
    if (s == NULL) {
        smcp_error(ctx, SMCP_INVALID_PARAMS,
                   str3(str3("inputResponses.", key, ".content."), field, " must be a string"));
    }
    return s;
}

/* "<prefix>action=<action>, content=<compact JSON>" as the tool's text. */
static void report_elicitation(smcp_ctx *ctx, const char *prefix, const char *action,
                               const smcp_json *content) {
    smcp_buf *b = buf_new(128);
    smcp_buf_puts(b, prefix);
    smcp_buf_puts(b, "action=");
    smcp_buf_puts(b, action);
    smcp_buf_puts(b, ", content=");
    const char *json = content != NULL ? smcp_json_dump(content, NULL) : NULL;
    smcp_buf_puts(b, json != NULL ? json : "{}");
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}

/* One elicitation, then a report of the answer. */
static void elicit_and_report(smcp_ctx *ctx, const char *key, const char *message,
                              const char *schema, const char *prefix) {
    const smcp_json *responses;
    if (!open_round(ctx, "elicitation", &responses)) {
        return;
    }
    const smcp_json *content;
    bool bad = false;
    const char *action = elicit_answer(ctx, responses, key, &content, &bad);
    if (bad) {
        return;
    }
    if (action == NULL) {
        ask_elicit(ctx, key, message, schema, NULL);
        return;
    }
    report_elicitation(ctx, prefix, action, content);
}

/* One sampling round: ask `prompt` under `key`, then answer with `prefix` and the model's text. */
static void sample_and_report(smcp_ctx *ctx, const char *key, const char *prompt,
                              int64_t max_tokens, const char *prefix) {
    const smcp_json *responses;
    if (!open_round(ctx, "sampling", &responses)) {
        return;
    }
    bool bad = false;
    const char *text = sampling_answer(ctx, responses, key, &bad);
    if (bad) {
        return;
    }
    if (text == NULL) {
        ask_sample(ctx, key, prompt, max_tokens);
        return;
    }
    smcp_tool_text(ctx, str3(prefix, text, ""));
}

/* --- handshake-era fixtures ------------------------------------------------------------------ */

void tool_sampling(smcp_ctx *ctx, const smcp_json *args) {
    const char *prompt = smcp_arg_str(ctx, args, "prompt");
    if (prompt != NULL) {
        sample_and_report(ctx, "sampling", prompt, 100, "LLM response: ");
    }
}

void tool_elicitation(smcp_ctx *ctx, const smcp_json *args) {
    const char *message = smcp_arg_str(ctx, args, "message");
    if (message != NULL) {
        elicit_and_report(ctx, "user_info", message, USER_INFO_SCHEMA, "User response: ");
    }
}

void tool_elicitation_defaults(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    elicit_and_report(ctx, "defaults",
                      "Test client default value handling - please accept with defaults",
                      DEFAULTS_SCHEMA, "Elicitation completed: ");
}

void tool_elicitation_enums(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    elicit_and_report(ctx, "enums", "Pick options from each of the five enum styles",
                      ENUMS_SCHEMA, "Elicitation completed: ");
}

/* --- 2026-07-28 fixtures ---------------------------------------------------------------------- */

void tool_missing_capability(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    sample_and_report(ctx, "greeting", "Say hello in one word.", 20, "The client's model said: ");
}

void tool_streaming_elicitation(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    elicit_and_report(ctx, "confirm", "Please confirm to continue", OK_SCHEMA, "Confirmed: ");
}

void tool_irr_elicitation(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    const smcp_json *responses;
    if (!open_round(ctx, "elicitation", &responses)) {
        return;
    }
    const smcp_json *content;
    bool bad = false;
    const char *action = elicit_answer(ctx, responses, "user_name", &content, &bad);
    if (bad) {
        return;
    }
    if (action == NULL) { /* first round, or the answer is missing: (re)ask */
        ask_elicit(ctx, "user_name", "What is your name?", NAME_SCHEMA, NULL);
    } else if (content == NULL) {
        smcp_tool_text(ctx, str3("No name given (", action, ")."));
    } else {
        const char *name = content_str(ctx, content, "user_name", "name");
        if (name != NULL) {
            smcp_tool_text(ctx, str3("Hello, ", name, "!"));
        }
    }
}

void tool_irr_sampling(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    sample_and_report(ctx, "capital_question", "What is the capital of France?", 100,
                      "Sampling response: ");
}

void tool_irr_list_roots(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    const smcp_json *responses;
    if (!open_round(ctx, "roots", &responses)) {
        return;
    }
    bool bad = false;
    const smcp_json *roots = roots_answer(ctx, responses, "client_roots", &bad);
    if (bad) {
        return;
    }
    if (roots == NULL) {
        smcp_buf *w = input_required_begin(ctx);
        if (w != NULL) {
            input_roots(w, "client_roots");
            input_required_end(w, NULL);
        }
        return;
    }
    smcp_buf *b = buf_new(128);
    smcp_buf_puts(b, "Client roots:");
    for (const smcp_json *r = roots->child; r != NULL; r = r->next) {
        smcp_buf_puts(b, " ");
        smcp_buf_puts(b, smcp_json_get_str(r, "uri"));
    }
    const char *text = smcp_buf_cstr(b);
    smcp_tool_text(ctx, text != NULL ? text : "out of memory");
}

/* Round 1 asks `key` with a sealed requestState; round 2 needs the answer and the state. */
static void confirm_with_state(smcp_ctx *ctx, const char *tool, const char *done_text) {
    const smcp_json *responses;
    if (!open_round(ctx, "elicitation", &responses)) {
        return;
    }
    bool absent;
    const smcp_json *state = state_open(ctx, tool, &absent);
    if (state == NULL && !absent) {
        return; /* refused: the error is set */
    }
    const smcp_json *content;
    bool bad = false;
    const char *action = elicit_answer(ctx, responses, "confirm", &content, &bad);
    if (bad) {
        return;
    }
    if (action == NULL || state == NULL) {
        const char *sealed = state_seal(ctx, tool, SMCP_JSON({"step": "confirm"}));
        if (sealed != NULL) {
            ask_elicit(ctx, "confirm", "Please confirm", OK_SCHEMA, sealed);
        }
        return;
    }
    bool ok = false;
    smcp_json_get_bool(content, "ok", &ok);
    smcp_tool_text(ctx, str3(done_text, ok ? " (confirmed)" : " (not confirmed: ",
                             ok ? "" : str3(action, ")", "")));
}

void tool_irr_request_state(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    confirm_with_state(ctx, "test_input_required_result_request_state",
                       "state-ok: the requestState verified");
}

void tool_irr_tampered_state(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    confirm_with_state(ctx, "test_input_required_result_tampered_state",
                       "state-ok: the requestState verified");
}

void tool_irr_multiple_inputs(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    static const char tool[] = "test_input_required_result_multiple_inputs";
    const smcp_json *responses;
    if (!open_round(ctx, NULL, &responses)) {
        return;
    }
    bool absent;
    const smcp_json *state = state_open(ctx, tool, &absent);
    if (state == NULL && !absent) {
        return;
    }
    if (state == NULL) {
        responses = NULL; /* answers without the state they belong to: start over */
    }
    bool bad = false;
    const smcp_json *content;
    const char *action = elicit_answer(ctx, responses, "user_name", &content, &bad);
    const char *greeting = bad ? NULL : sampling_answer(ctx, responses, "greeting", &bad);
    const smcp_json *roots = bad ? NULL : roots_answer(ctx, responses, "client_roots", &bad);
    if (bad) {
        return;
    }
    if (action != NULL && greeting != NULL && roots != NULL) {
        const char *name = content != NULL ? smcp_json_get_str(content, "name") : NULL;
        smcp_buf *b = buf_new(128);
        smcp_buf_puts(b, greeting);
        smcp_buf_puts(b, " ");
        smcp_buf_puts(b, name != NULL ? name : "(no name)");
        smcp_buf_puts(b, "; roots: ");
        smcp_buf_put_uint(b, roots->count);
        const char *text = smcp_buf_cstr(b);
        smcp_tool_text(ctx, text != NULL ? text : "out of memory");
        return;
    }
    /* Ask for whatever is still missing (everything in round 1), each within the client's
     * capabilities; answers already given are not asked again but must be sent again with the
     * new state. */
    const char *sealed = state_seal(ctx, tool, NULL);
    smcp_buf *w = sealed != NULL ? input_required_begin(ctx) : NULL;
    if (w == NULL) {
        return;
    }
    if (action == NULL && client_may(ctx, "elicitation")) {
        input_elicit(w, "user_name", "What is your name?", NAME_SCHEMA);
    }
    if (greeting == NULL && client_may(ctx, "sampling")) {
        input_sample(w, "greeting", "Generate a greeting", 50);
    }
    if (roots == NULL && client_may(ctx, "roots")) {
        input_roots(w, "client_roots");
    }
    input_required_end(w, sealed);
}

/* Round 1 asks step1 (state: step 1); round 2 takes the name and asks step2 (state: step 2 and
 * the name); round 3 answers. The name lives only in the sealed state between rounds. */
void tool_irr_multi_round(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    static const char tool[] = "test_input_required_result_multi_round";
    static const char color_question[] = "Step 2: What is your favorite color?";
    const smcp_json *responses;
    if (!open_round(ctx, "elicitation", &responses)) {
        return;
    }
    bool absent;
    const smcp_json *state = state_open(ctx, tool, &absent);
    if (state == NULL) {
        const char *sealed = absent ? state_seal(ctx, tool, SMCP_JSON({"step": 1})) : NULL;
        if (sealed != NULL) {
            ask_elicit(ctx, "step1", "Step 1: What is your name?", NAME_SCHEMA, sealed);
        }
        return;
    }
    const char *echoed = smcp_json_get_str(smcp_ctx_params(ctx), "requestState");
    const char *name = smcp_json_get_str(state, "name");
    const char *key = name == NULL ? "step1" : "step2";
    const smcp_json *content;
    bool bad = false;
    const char *action = elicit_answer(ctx, responses, key, &content, &bad);
    if (bad) {
        return;
    }
    if (action == NULL) { /* this round's answer is missing: ask it again */
        if (name == NULL) {
            ask_elicit(ctx, "step1", "Step 1: What is your name?", NAME_SCHEMA, echoed);
        } else {
            ask_elicit(ctx, "step2", color_question, COLOR_SCHEMA, echoed);
        }
        return;
    }
    if (content == NULL) {
        smcp_tool_text(ctx, str3(str3("Stopped at ", key, ": the user chose "), action, "."));
        return;
    }
    if (name == NULL) {
        name = content_str(ctx, content, key, "name");
        if (name == NULL) {
            return;
        }
        smcp_buf *members = buf_new(64);
        smcp_w_obj(members);
        smcp_w_kint(members, "step", 2);
        smcp_w_kstr(members, "name", name);
        smcp_w_obj_end(members);
        const char *sealed = state_seal(ctx, tool, smcp_buf_cstr(members));
        if (sealed != NULL) {
            ask_elicit(ctx, "step2", color_question, COLOR_SCHEMA, sealed);
        }
        return;
    }
    const char *color = content_str(ctx, content, key, "color");
    if (color != NULL) {
        smcp_tool_text(ctx, str3(str3(name, "'s favorite color is ", color), ".", ""));
    }
}

void tool_irr_capabilities(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    const smcp_json *responses;
    if (!open_round(ctx, NULL, &responses)) {
        return;
    }
    if (responses != NULL) {
        smcp_tool_text(ctx, "Thanks: the input arrived.");
        return;
    }
    bool elicit = client_may(ctx, "elicitation"), sample = client_may(ctx, "sampling");
    bool roots = client_may(ctx, "roots");
    if (!elicit && !sample && !roots) {
        smcp_tool_text(ctx, "The client declared no capability to ask through; nothing asked.");
        return;
    }
    smcp_buf *w = input_required_begin(ctx);
    if (w == NULL) {
        return;
    }
    if (elicit) {
        input_elicit(w, "user_name", "What is your name?", NAME_SCHEMA);
    }
    if (sample) {
        input_sample(w, "greeting", "Generate a greeting", 50);
    }
    if (roots) {
        input_roots(w, "client_roots");
    }
    input_required_end(w, NULL);
}

void prompt_irr(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    const smcp_json *responses;
    if (!open_round(ctx, "elicitation", &responses)) {
        return;
    }
    const smcp_json *content;
    bool bad = false;
    const char *action = elicit_answer(ctx, responses, "user_context", &content, &bad);
    if (bad) {
        return;
    }
    if (action == NULL) {
        ask_elicit(ctx, "user_context", "What context should the prompt use?", CONTEXT_SCHEMA,
                   NULL);
        return;
    }
    const char *context = content != NULL ? smcp_json_get_str(content, "context") : NULL;
    smcp_prompt_message(ctx, "user",
                        str3("Answer with this context in mind: ",
                             context != NULL ? context : "(none given)", ""));
}
