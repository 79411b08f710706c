/*
 * hog - the noisy-neighbour benchmark tenant: tools that abuse the box on purpose (a call that
 * never ends, one that takes all the memory it may, one that floods the kv store) and one that
 * does nothing (echo), so that one module serves as both the noisy tenant and the quiet one.
 */
#include "smcp.h"

static void echo(smcp_ctx *ctx, const smcp_json *args) {
    const char *text = smcp_arg_str(ctx, args, "text");
    if (!text) {
        return;
    }
    smcp_tool_textn(ctx, text, smcp_json_get(args, "text")->len);
}

/* Never returns: the box stops it by fuel or by its wall-clock limit. */
static void spin(smcp_ctx *ctx, const smcp_json *args) {
    (void)ctx;
    (void)args;
    volatile uint64_t counter = 0;
    for (;;) {
        counter++;
    }
}

/* Grows linear memory to the tenant's limit, touches every page (so the host really commits
 * it), then traps: the instance is discarded and the next call pays for it all again. */
static void bomb(smcp_ctx *ctx, const smcp_json *args) {
    (void)ctx;
    (void)args;
    for (;;) {
        size_t before = __builtin_wasm_memory_grow(0, 16);
        if (before == (size_t)-1) {
            break;
        }
        volatile unsigned char *page = (volatile unsigned char *)(before * 65536);
        for (size_t offset = 0; offset < 16 * 65536; offset += 4096) {
            page[offset] = 1;
        }
    }
    __builtin_trap();
}

/* count kv sets of size bytes each, under keys flood/0 .. flood/(count-1). */
static void kvflood(smcp_ctx *ctx, const smcp_json *args) {
    int64_t count = 0, size = 0;
    if (!smcp_arg_int(ctx, args, "count", &count) || !smcp_arg_int(ctx, args, "size", &size)) {
        return;
    }
    if (count < 0 || size < 0 || size > 1048576) {
        smcp_tool_error(ctx, "count and size must be >= 0, size at most 1 MiB");
        return;
    }
    char *value = smcp_arena_alloc((size_t)size + 1);
    if (!value) {
        smcp_tool_error(ctx, "out of memory");
        return;
    }
    memset(value, 'x', (size_t)size);
    value[size] = 0;
    int64_t written = 0;
    for (int64_t i = 0; i < count; i++) {
        char key[32];
        smcp_buf *name = smcp_buf_new(32);
        smcp_buf_puts(name, "flood/");
        smcp_buf_put_int(name, i % 64);
        memcpy(key, smcp_buf_cstr(name), strlen(smcp_buf_cstr(name)) + 1);
        if (smcp_kv_set(key, value, (size_t)size) == 0) {
            written++;
        }
    }
    smcp_buf *reply = smcp_buf_new(32);
    smcp_buf_put_int(reply, written);
    smcp_tool_text(ctx, smcp_buf_cstr(reply));
}

#define EMPTY_SCHEMA "{\"type\":\"object\"}"

static const smcp_tool tools[] = {
    {
        .name = "echo",
        .description = "Returns its text argument unchanged.",
        .input_schema = "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},"
                        "\"required\":[\"text\"]}",
        .call = echo,
    },
    {.name = "spin", .description = "Loops forever.", .input_schema = EMPTY_SCHEMA, .call = spin},
    {
        .name = "bomb",
        .description = "Takes all the memory it may, then traps.",
        .input_schema = EMPTY_SCHEMA,
        .call = bomb,
    },
    {
        .name = "kvflood",
        .description = "Writes count kv values of size bytes.",
        .input_schema = "{\"type\":\"object\",\"properties\":{\"count\":{\"type\":\"integer\"},"
                        "\"size\":{\"type\":\"integer\"}},\"required\":[\"count\",\"size\"]}",
        .call = kvflood,
    },
};

SMCP_SERVER(.name = "bench-hog", .title = "bench hog", .version = "1", .tools = tools,
            .ntools = SMCP_COUNT(tools));
