/*
 * mrtr.h - asking the client for input (sampling, elicitation, roots) the 2026-07-28 way: a
 * request is answered with an InputRequiredResult, and the client retries it with
 * params.inputResponses (and params.requestState, echoed verbatim). A handler is therefore a
 * function of (arguments, inputResponses, requestState) and keeps nothing in memory between
 * rounds, which is what smcp-box instances require anyway.
 *
 * The same handlers serve handshake-era clients once the box drives the rounds for them
 * (docs/conformance.md, "Server-to-client requests"): it sends each input request to the
 * client as a JSON-RPC request on the call's SSE stream and calls the module again with the
 * answers.
 */
#ifndef CONFORMANCE_MRTR_H
#define CONFORMANCE_MRTR_H

#include "smcp.h"

/* MissingRequiredClientCapabilityError (2026-07-28). */
#define MISSING_CLIENT_CAPABILITY (-32021)

/* --- what the client declared ------------------------------------------------------------- */

/* False only when the request's _meta lists the client's capabilities and `name` is not among
 * them. A request without the list (a handshake-era request: the box knows the session's
 * capabilities and checks them itself) may ask. */
bool client_may(smcp_ctx *ctx, const char *name);

/* Answers -32021 with data.requiredCapabilities = {name: {}}; returns false for chaining. */
bool missing_capability(smcp_ctx *ctx, const char *name);

/* --- reading the client's answers --------------------------------------------------------- */

/* params.inputResponses: true with *out = the object (or NULL when absent); false, after
 * answering -32602, when it is present but not an object (null included). */
bool input_responses(smcp_ctx *ctx, const smcp_json **out);

/* The answer under key as an ElicitResult: returns its action ("accept", "decline",
 * "cancel") and sets *content to its content object (NULL unless accepted). Returns NULL when
 * there is no answer under key; answers -32602 and sets *bad when the answer is malformed. */
const char *elicit_answer(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                          const smcp_json **content, bool *bad);

/* The text of a CreateMessageResult under key (its text content block), or NULL when absent;
 * -32602 and *bad when malformed. */
const char *sampling_answer(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                            bool *bad);

/* The roots array of a ListRootsResult under key, or NULL when absent; -32602 and *bad when
 * malformed. */
const smcp_json *roots_answer(smcp_ctx *ctx, const smcp_json *responses, const char *key,
                              bool *bad);

/* --- asking -------------------------------------------------------------------------------- */

/* Opens {"resultType":"input_required","inputRequests":{ on the raw result; NULL if the reply
 * was already started. Add requests with the input_* writers, close with input_required_end
 * (state may be NULL: no requestState). */
smcp_buf *input_required_begin(smcp_ctx *ctx);
void input_elicit(smcp_buf *w, const char *key, const char *message, const char *schema_json);
void input_sample(smcp_buf *w, const char *key, const char *prompt, int64_t max_tokens);
void input_roots(smcp_buf *w, const char *key);
void input_required_end(smcp_buf *w, const char *state);

/* --- requestState: sealed, so that a client can echo it but not forge it ------------------- */

/* "v1." base64url(payload) "." base64url(HMAC-SHA-256(key, "v1." base64url(payload))), where
 * payload is {"tool": tool, "iat": <ms>, ...members}. members is JSON object text whose
 * members are merged in (may be NULL). The key is [config] request_state_key. Returns NULL
 * (after answering -32603) when no key is configured. */
const char *state_seal(smcp_ctx *ctx, const char *tool, const char *members_json);

/* Opens params.requestState. Returns the payload object, or NULL: *absent is set when the
 * request has no requestState; otherwise the state was forged, tampered with, expired (older
 * than STATE_TTL_MS) or issued for another tool, and -32602 has been answered. */
#define STATE_TTL_MS (10 * 60 * 1000)
const smcp_json *state_open(smcp_ctx *ctx, const char *tool, bool *absent);

#endif
