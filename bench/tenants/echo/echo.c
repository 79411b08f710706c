/*
 * echo - the benchmark tenant: one tool that returns its text argument unchanged.
 *
 * It does as little as an MCP server can, so that a benchmark of it measures the box (auth,
 * session, protocol, sandbox, store), not the tenant.
 */
#include "smcp.h"

static void echo(smcp_ctx *ctx, const smcp_json *args) {
    const char *text = smcp_arg_str(ctx, args, "text");
    if (!text) {
        return;
    }
    smcp_tool_textn(ctx, text, smcp_json_get(args, "text")->len);
}

static const smcp_tool tools[] = {
    {
        .name = "echo",
        .description = "Returns its text argument unchanged.",
        .input_schema = "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},"
                        "\"required\":[\"text\"]}",
        .annotations = "{\"readOnlyHint\":true}",
        .call = echo,
    },
};

/* The title's digits are a marker: the suite patches them in the built bytes to make distinct
 * modules (distinct hashes, so distinct compiled code) for the cold-start and density tenants. */
SMCP_SERVER(.name = "bench-echo", .title = "bench echo 000000", .version = "1", .tools = tools,
            .ntools = SMCP_COUNT(tools));
