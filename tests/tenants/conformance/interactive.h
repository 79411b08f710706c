/* interactive.h - the tools and the prompt that ask the client for input (sampling,
 * elicitation, roots), all through InputRequiredResult rounds (mrtr.h). */
#ifndef CONFORMANCE_INTERACTIVE_H
#define CONFORMANCE_INTERACTIVE_H

#include "smcp.h"

/* Handshake-era suite fixtures (the box turns their rounds into client requests). */
void tool_sampling(smcp_ctx *ctx, const smcp_json *args);
void tool_elicitation(smcp_ctx *ctx, const smcp_json *args);
void tool_elicitation_defaults(smcp_ctx *ctx, const smcp_json *args);
void tool_elicitation_enums(smcp_ctx *ctx, const smcp_json *args);

/* 2026-07-28 suite fixtures. */
void tool_missing_capability(smcp_ctx *ctx, const smcp_json *args);
void tool_streaming_elicitation(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_elicitation(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_sampling(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_list_roots(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_request_state(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_multiple_inputs(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_multi_round(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_tampered_state(smcp_ctx *ctx, const smcp_json *args);
void tool_irr_capabilities(smcp_ctx *ctx, const smcp_json *args);
void prompt_irr(smcp_ctx *ctx, const smcp_json *args);

#endif
