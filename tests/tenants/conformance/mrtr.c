/* mrtr.c - see mrtr.h. */
#include "mrtr.h"

#include "content.h"
#include "crypto.h"

#define META_CAPABILITIES "io.modelcontextprotocol/clientCapabilities"
#define STATE_PREFIX "v1."
#define STATE_PREFIX_LEN 3
#define STATE_MAC_B64_LEN 43 /* 32 bytes, unpadded */
#define STATE_MAX_PAYLOAD 4096

/* --- capabilities --------------------------------------------------------------------------- */

bool client_may(smcp_ctx *ctx, const char *name) {
    const smcp_json *caps = smcp_json_get(smcp_ctx_meta(ctx), META_CAPABILITIES);
    if (caps == NULL || caps->type != SMCP_JSON_OBJECT) {
        return true;
    }
    const smcp_json *cap = smcp_json_get(caps, name);
    return cap != NULL && cap->type == SMCP_JSON_OBJECT;
}

bool missing_capability(smcp_ctx *ctx, const char *name) {
    smcp_buf *data = buf_new(64);
    smcp_w_obj(data);
    smcp_w_key(data, "requiredCapabilities");
    smcp_w_obj(data);
    smcp_w_key(data, name);
    smcp_w_obj(data);
    smcp_w_obj_end(data);
    smcp_w_obj_end(data);
    smcp_w_obj_end(data);
    smcp_buf *message = buf_new(96);
    smcp_buf_puts(message, "this request needs the client's '");
    smcp_buf_puts(message, name);
    smcp_buf_puts(message, "' capability; declare it in _meta clientCapabilities");
    smcp_error_data(ctx, MISSING_CLIENT_CAPABILITY, smcp_buf_cstr(message), smcp_buf_cstr(data));
    return false;
}

/* --- answers -------------------------------------------------------------------------------- */

bool input_responses(smcp_ctx *ctx, const smcp_json **out) {
    const smcp_json *r = smcp_json_get(smcp_ctx_params(ctx), "inputResponses");
    *out = NULL;
    if (r == NULL) {
        return true;
    }
    if (r->type != SMCP_JSON_OBJECT) {
        smcp_error(ctx, SMCP_INVALID_PARAMS,
                   "params.inputResponses must be an object mapping each inputRequests key to "
                   "the client's result");
        return false;
    }
    *out = r;
    return true;
}

static const smcp_json *answer_object(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                                      const char *what, bool *bad) {
    const smcp_json *a = smcp_json_get(responses, key);
    if (a == NULL) {
        return NULL;
    }
    if (a->type != SMCP_JSON_OBJECT) {
        smcp_buf *m = buf_new(96);
        smcp_buf_puts(m, "inputResponses.");
        smcp_buf_puts(m, key);
        smcp_buf_puts(m, " must be ");
        smcp_buf_puts(m, what);
        smcp_error(ctx, SMCP_INVALID_PARAMS, smcp_buf_cstr(m));
        *bad = true;
        return NULL;
    }
    return a;
}

static void malformed(smcp_ctx *ctx, const char *key, const char *why, bool *bad) {
    smcp_error(ctx, SMCP_INVALID_PARAMS, str3(key, ": ", why));
    *bad = true;
}

const char *elicit_answer(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                          const smcp_json **content, bool *bad) {
    *content = NULL;
    const smcp_json *a = answer_object(ctx, responses, key, "an ElicitResult object", bad);
    if (a == NULL) {
        return NULL;
    }
    const char *action = smcp_json_get_str(a, "action");
    if (!smcp_streq(action, "accept") && !smcp_streq(action, "decline") &&
        !smcp_streq(action, "cancel")) {
        malformed(ctx, key, "ElicitResult.action must be accept, decline or cancel", bad);
        return NULL;
    }
    const smcp_json *c = smcp_json_get(a, "content");
    if (smcp_streq(action, "accept")) {
        if (c == NULL || c->type != SMCP_JSON_OBJECT) {
            malformed(ctx, key, "an accepted ElicitResult needs a content object", bad);
            return NULL;
        }
        *content = c;
    }
    return action;
}

const char *sampling_answer(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                            bool *bad) {
    const smcp_json *a = answer_object(ctx, responses, key, "a CreateMessageResult object", bad);
    if (a == NULL) {
        return NULL;
    }
    const smcp_json *c = smcp_json_get(a, "content");
    if (c != NULL && c->type == SMCP_JSON_ARRAY) {
        for (c = c->child; c != NULL && !smcp_streq(smcp_json_get_str(c, "type"), "text");) {
            c = c->next;
        }
    }
    const char *text = smcp_json_get_str(c, "text");
    if (!smcp_streq(smcp_json_get_str(c, "type"), "text") || text == NULL) {
        malformed(ctx, key, "CreateMessageResult.content must hold a text block", bad);
        return NULL;
    }
    return text;
}

const smcp_json *roots_answer(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                              bool *bad) {
    const smcp_json *a = answer_object(ctx, responses, key, "a ListRootsResult object", bad);
    if (a == NULL) {
        return NULL;
    }
    const smcp_json *roots = smcp_json_get(a, "roots");
    if (roots == NULL || roots->type != SMCP_JSON_ARRAY) {
        malformed(ctx, key, "ListRootsResult.roots must be an array", bad);
        return NULL;
    }
    for (const smcp_json *r = roots->child; r != NULL; r = r->next) {
        if (smcp_json_get_str(r, "uri") == NULL) {
            malformed(ctx, key, "every root needs a uri", bad);
            return NULL;
        }
    }
    return roots;
}

/* --- asking --------------------------------------------------------------------------------- */

smcp_buf *input_required_begin(smcp_ctx *ctx) {
    smcp_buf *w = smcp_result(ctx);
    if (w != NULL) {
        smcp_w_obj(w);
        smcp_w_kstr(w, "resultType", "input_required");
        smcp_w_key(w, "inputRequests");
        smcp_w_obj(w);
    }
    return w;
}

static void request_begin(smcp_buf *w, const char *key, const char *method) {
    smcp_w_key(w, key);
    smcp_w_obj(w);
    smcp_w_kstr(w, "method", method);
    smcp_w_key(w, "params");
    smcp_w_obj(w);
}

static void request_end(smcp_buf *w) {
    smcp_w_obj_end(w);
    smcp_w_obj_end(w);
}

void input_elicit(smcp_buf *w, const char *key, const char *message, const char *schema_json) {
    request_begin(w, key, "elicitation/create");
    smcp_w_kstr(w, "message", message);
    smcp_w_key(w, "requestedSchema");
    smcp_w_value(w, smcp_json_parse(schema_json, strlen(schema_json), NULL));
    request_end(w);
}

void input_sample(smcp_buf *w, const char *key, const char *prompt, int64_t max_tokens) {
    request_begin(w, key, "sampling/createMessage");
    smcp_w_key(w, "messages");
    smcp_w_arr(w);
    smcp_w_obj(w);
    smcp_w_kstr(w, "role", "user");
    smcp_w_key(w, "content");
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "text");
    smcp_w_kstr(w, "text", prompt);
    smcp_w_obj_end(w);
    smcp_w_obj_end(w);
    smcp_w_arr_end(w);
    smcp_w_kint(w, "maxTokens", max_tokens);
    request_end(w);
}

void input_roots(smcp_buf *w, const char *key) {
    request_begin(w, key, "roots/list");
    request_end(w);
}

void input_required_end(smcp_buf *w, const char *state) {
    smcp_w_obj_end(w); /* inputRequests */
    if (state != NULL) {
        smcp_w_kstr(w, "requestState", state);
    }
    smcp_w_obj_end(w);
}

/* --- requestState ----------------------------------------------------------------------------- */

static const char *state_key(size_t *n) { return smcp_config_get("request_state_key", n); }

const char *state_seal(smcp_ctx *ctx, const char *tool, const char *members_json) {
    size_t key_len;
    const char *key = state_key(&key_len);
    if (key == NULL || key_len == 0) {
        smcp_error(ctx, SMCP_INTERNAL_ERROR,
                   "tenant misconfigured: set request_state_key in [config] of tenant.toml");
        return NULL;
    }
    smcp_buf *p = buf_new(128);
    smcp_w_obj(p);
    smcp_w_kstr(p, "tool", tool);
    smcp_w_kint(p, "iat", smcp_time_now_ms());
    const smcp_json *members =
        members_json != NULL ? smcp_json_parse(members_json, strlen(members_json), NULL) : NULL;
    for (const smcp_json *m = members != NULL ? members->child : NULL; m != NULL; m = m->next) {
        smcp_w_keyn(p, m->key, m->key_len);
        smcp_w_value(p, m);
    }
    smcp_w_obj_end(p);
    if (p->failed) {
        return NULL;
    }
    char *payload = smcp_arena_alloc(p->len / 3 * 4 + 4);
    if (payload == NULL) {
        return NULL;
    }
    size_t payload_len = b64url_encode((const uint8_t *)p->data, p->len, payload);
    uint8_t mac[SHA256_LEN];
    hmac_sha256(key, key_len, STATE_PREFIX, STATE_PREFIX_LEN, payload, payload_len, mac);
    smcp_buf *token = buf_new(STATE_PREFIX_LEN + payload_len + 1 + STATE_MAC_B64_LEN + 1);
    smcp_buf_puts(token, STATE_PREFIX);
    smcp_buf_putn(token, payload, payload_len);
    smcp_buf_putc(token, '.');
    char mac_b64[STATE_MAC_B64_LEN + 1];
    smcp_buf_putn(token, mac_b64, b64url_encode(mac, SHA256_LEN, mac_b64));
    return smcp_buf_cstr(token);
}

static const smcp_json *state_refused(smcp_ctx *ctx, const char *why) {
    smcp_error(ctx, SMCP_INVALID_PARAMS,
               str3("requestState refused: ", why,
                                 "; send the request again without requestState and "
                                 "inputResponses to start over"));
    return NULL;
}

const smcp_json *state_open(smcp_ctx *ctx, const char *tool, bool *absent) {
    const smcp_json *v = smcp_json_get(smcp_ctx_params(ctx), "requestState");
    *absent = v == NULL;
    if (v == NULL) {
        return NULL;
    }
    if (v->type != SMCP_JSON_STRING) {
        return state_refused(ctx, "it must be the string the server sent");
    }
    const char *s = v->str;
    size_t n = v->len;
    if (n < STATE_PREFIX_LEN + 2 + STATE_MAC_B64_LEN || strncmp(s, STATE_PREFIX, 3) != 0 ||
        s[n - STATE_MAC_B64_LEN - 1] != '.') {
        return state_refused(ctx, "it is not a state this server issued");
    }
    const char *payload = s + STATE_PREFIX_LEN;
    size_t payload_len = n - STATE_PREFIX_LEN - STATE_MAC_B64_LEN - 1;
    uint8_t mac[SHA256_LEN];
    if (b64url_decode(s + n - STATE_MAC_B64_LEN, STATE_MAC_B64_LEN, mac, sizeof mac) !=
        SHA256_LEN) {
        return state_refused(ctx, "it is not a state this server issued");
    }
    size_t key_len;
    const char *key = state_key(&key_len);
    if (key == NULL || key_len == 0) {
        smcp_error(ctx, SMCP_INTERNAL_ERROR,
                   "tenant misconfigured: set request_state_key in [config] of tenant.toml");
        return NULL;
    }
    uint8_t expected[SHA256_LEN];
    hmac_sha256(key, key_len, STATE_PREFIX, STATE_PREFIX_LEN, payload, payload_len, expected);
    if (!equal_ct(mac, expected, SHA256_LEN)) {
        return state_refused(ctx, "it failed its integrity check (it was altered or forged)");
    }
    uint8_t *raw = smcp_arena_alloc(STATE_MAX_PAYLOAD);
    long raw_len = raw == NULL ? -1 : b64url_decode(payload, payload_len, raw, STATE_MAX_PAYLOAD);
    const smcp_json *p =
        raw_len < 0 ? NULL : smcp_json_parse((const char *)raw, (size_t)raw_len, NULL);
    int64_t iat;
    if (p == NULL || p->type != SMCP_JSON_OBJECT || !smcp_json_get_int(p, "iat", &iat)) {
        return state_refused(ctx, "its payload is unreadable");
    }
    if (!smcp_streq(smcp_json_get_str(p, "tool"), tool)) {
        return state_refused(ctx, "it was issued for another tool or prompt");
    }
    int64_t age = smcp_time_now_ms() - iat;
    if (age > STATE_TTL_MS || age < -60 * 1000) {
        return state_refused(ctx, "it has expired");
    }
    return p;
}
