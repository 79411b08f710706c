/* Private declarations shared by the SDK's translation units; not for tenants. */
#ifndef SMCP_INTERNAL_H
#define SMCP_INTERNAL_H

#include "smcp.h"

/* Arena allocation without zeroing (for buffers the caller fills at once). */
void *smcp__alloc_raw(size_t n);

/* Grows the block p of old bytes to n bytes, in place when p is the newest block. */
void *smcp__realloc(void *p, size_t old, size_t n);

/* Gives back p if it is the newest block (scratch space such as a sent notification). */
void smcp__release(void *p);

/* Set when an allocation failed during the current message. */
bool smcp__oom(void);

/* Marks the start and end of smcp_handle: allocations outside it start a new message. */
void smcp__enter_handle(size_t len);
void smcp__leave_handle(void);

/* Appends s as a JSON string literal (quotes included) with escaping. */
void smcp__put_json_string(smcp_buf *b, const char *s, size_t n);

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 if there is none. */
size_t smcp__utf8_seq(const unsigned char *s, size_t n);

/* The value of a validated JSON number literal, correctly rounded (19 significant digits
 * are kept; later ones are dropped). */
double smcp__parse_number(const char *s, size_t n);

/* Ensures room for n more bytes; false (and b->failed) when out of memory. */
bool smcp__reserve(smcp_buf *b, size_t n);

#define MAX_COMPLETIONS 100 /* MCP caps completion values per response at 100 */
#define DEFAULT_PROTOCOL "2025-11-25"

/* What the reply's result is being built as. */
typedef enum smcp_kind { K_NONE, K_RAW, K_TOOL, K_PROMPT, K_READ, K_LIST, K_COMPLETE } smcp_kind;

struct smcp_ctx {
    const char *method;
    const smcp_json *params;
    const smcp_json *meta;
    const smcp_json *progress_token;
    const smcp_json *id;
    smcp_buf *out;
    smcp_buf mark; /* writer state right after the id: errors cut the reply back to it */
    smcp_kind kind;
    bool is_tool_call;
    bool started;
    bool errored;
    bool tool_is_error;
    const char *structured;
    size_t structured_len;
    size_t ncompletions;
    const smcp_prompt *prompt;
};

/* Opens the result as kind k; false when the reply is an error or a result of another kind. */
bool smcp__begin(smcp_ctx *ctx, smcp_kind k);

/* Closes whatever smcp__begin opened. */
void smcp__finish(smcp_ctx *ctx);

/* "<a><b><c>" in the arena (for messages that quote a name); never NULL. */
const char *smcp__cat3(const char *a, const char *b, const char *c);

#endif
