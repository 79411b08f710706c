/* A deliberately badly behaved tenant for end-to-end fault tests. Each tool breaks one limit;
 * `ok` proves the tenant still serves after a fault. Never ship this. */
#include "smcp.h"

static void tool_ok(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_tool_text(ctx, "still serving");
}

/* volatile keeps the optimiser from proving the loop has no effect and deleting it. */
static volatile unsigned long long spin_counter;

static void tool_spin(smcp_ctx *ctx, const smcp_json *args) {
    (void)ctx;
    (void)args;
    for (;;) {
        spin_counter++;
    }
}

static void tool_grow(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    for (;;) {
        char *block = smcp_arena_alloc(1 << 20);
        if (block == 0) {
            __builtin_trap(); /* out of memory at the limit: the box reports the memory limit */
        }
        block[0] = 1;
        (void)ctx;
    }
}

static void tool_trap(smcp_ctx *ctx, const smcp_json *args) {
    (void)ctx;
    (void)args;
    __builtin_trap();
}

static unsigned recurse(volatile unsigned depth) {
    volatile char pad[256];
    if (depth == 0xFFFFFFFFu) {
        return 0; /* unreachable in practice: the stack overflows long before */
    }
    pad[0] = (char)depth;
    return recurse(depth + 1) + (unsigned)pad[0];
}

static void tool_recurse(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    smcp_tool_text(ctx, recurse(0) ? "deep" : "deeper");
}

static const smcp_tool tools[] = {
    {.name = "ok", .description = "Answers normally.", .call = tool_ok},
    {.name = "spin", .description = "Loops forever.", .call = tool_spin},
    {.name = "grow", .description = "Allocates until memory runs out.", .call = tool_grow},
    {.name = "trap", .description = "Executes an unreachable instruction.", .call = tool_trap},
    {.name = "recurse", .description = "Recurses until the stack overflows.", .call = tool_recurse},
};

SMCP_SERVER(.name = "faults", .version = "0.0.1", .tools = tools,
            .ntools = sizeof tools / sizeof tools[0]);
