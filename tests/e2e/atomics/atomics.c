/* A test tenant for the kv atomics and random_bytes (docs/abi.md 2.3): each tool wraps one SDK
 * call and answers {"rc": <status>, ...} as structured content, so tests see the exact status
 * codes the box returns. Never ship this. */
#include "smcp.h"

static void answer(smcp_ctx *ctx, int rc, const char *key, int64_t value, bool with_value) {
    smcp_buf *b = smcp_buf_new(64);
    smcp_w_obj(b);
    smcp_w_kint(b, "rc", rc);
    if (with_value) {
        smcp_w_kint(b, key, value);
    }
    smcp_w_obj_end(b);
    smcp_tool_structured(ctx, b->data, b->len);
}

/* {key, delta} -> {rc, value}: smcp_kv_incr. */
static void tool_incr(smcp_ctx *ctx, const smcp_json *args) {
    const char *key = smcp_arg_str(ctx, args, "key");
    int64_t delta;
    if (key == NULL || !smcp_arg_int_opt(ctx, args, "delta", &delta, 1)) {
        return;
    }
    int64_t value = 0;
    int rc = smcp_kv_incr(key, delta, &value);
    answer(ctx, rc, "value", value, rc == SMCP_KV_OK);
}

/* {key, value, expected?} -> {rc}: smcp_kv_cas; an absent or null expected means "absent". */
static void tool_cas(smcp_ctx *ctx, const smcp_json *args) {
    const char *key = smcp_arg_str(ctx, args, "key");
    const char *value = smcp_arg_str(ctx, args, "value");
    const char *expected = smcp_arg_str_opt(ctx, args, "expected", NULL);
    if (key == NULL || value == NULL || smcp_ctx_failed(ctx)) {
        return;
    }
    size_t exp_len = expected != NULL ? smcp_json_get(args, "expected")->len : 0;
    answer(ctx, smcp_kv_cas(key, expected, exp_len, value, smcp_json_get(args, "value")->len),
           "", 0, false);
}

/* {key, value} -> {rc}: smcp_kv_set, to put a non-integer where incr will find it. */
static void tool_set(smcp_ctx *ctx, const smcp_json *args) {
    const char *key = smcp_arg_str(ctx, args, "key");
    const char *value = smcp_arg_str(ctx, args, "value");
    if (key == NULL || value == NULL) {
        return;
    }
    answer(ctx, smcp_kv_set(key, value, smcp_json_get(args, "value")->len), "", 0, false);
}

/* {key} -> the value as text, or an error when absent. */
static void tool_get(smcp_ctx *ctx, const smcp_json *args) {
    const char *key = smcp_arg_str(ctx, args, "key");
    if (key == NULL) {
        return;
    }
    size_t n;
    const char *value = smcp_kv_get(key, &n);
    if (value == NULL) {
        smcp_tool_error(ctx, "absent");
        return;
    }
    smcp_tool_textn(ctx, value, n);
}

/* {len} -> the bytes as lowercase hex text: smcp_random_bytes. */
static void tool_random(smcp_ctx *ctx, const smcp_json *args) {
    int64_t len;
    if (!smcp_arg_int(ctx, args, "len", &len)) {
        return;
    }
    /* A little more room than the limit, so the box (not this tenant) refuses the excess. */
    static unsigned char buf[SMCP_RANDOM_MAX + 16];
    size_t n = len < 0 ? 0 : (size_t)len;
    if (n > sizeof buf) {
        n = sizeof buf;
    }
    smcp_random_bytes(buf, n);
    smcp_buf *hex = smcp_buf_new(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        smcp_buf_putc(hex, "0123456789abcdef"[buf[i] >> 4]);
        smcp_buf_putc(hex, "0123456789abcdef"[buf[i] & 15]);
    }
    smcp_tool_textn(ctx, hex->data, hex->len);
}

static const smcp_tool tools[] = {
    {.name = "incr", .description = "smcp_kv_incr(key, delta).", .call = tool_incr},
    {.name = "cas", .description = "smcp_kv_cas(key, expected, value).", .call = tool_cas},
    {.name = "set", .description = "smcp_kv_set(key, value).", .call = tool_set},
    {.name = "get", .description = "smcp_kv_get(key).", .call = tool_get},
    {.name = "random", .description = "smcp_random_bytes(len) as hex.", .call = tool_random},
};

SMCP_SERVER(.name = "atomics", .version = "0.0.1", .tools = tools,
            .ntools = sizeof tools / sizeof tools[0]);
