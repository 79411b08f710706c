/*
 * smcp.h - the C SDK for smcp-box tenant modules (ABI "smcp-v1", see docs/abi.md).
 *
 * A tenant is one C file that includes this header, defines its tools, resources and prompts
 * in static tables and names them with SMCP_SERVER(...). The SDK provides the module's exports
 * (memory, smcp_alloc, smcp_handle), the JSON-RPC/MCP plumbing, a JSON reader and writer, typed
 * wrappers for the host imports and the few libc functions a freestanding build needs.
 *
 * Memory model: every pointer the SDK hands out lives in a per-message arena. The arena is
 * emptied when the next message arrives, so nothing has to be freed and nothing survives a
 * request. State that must survive belongs in the key-value store (smcp_kv_*): the box may
 * reuse an instance for many requests or throw it away at any moment.
 *
 * Conventions: strings are UTF-8 and NUL-terminated unless a length is passed next to them.
 * Functions that take a `const smcp_json *` accept NULL and then behave as for a missing value.
 */
#ifndef SMCP_H
#define SMCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMCP_ABI_VERSION "smcp-v1"

/* Number of elements of a static array, for the counts in smcp_server. */
#define SMCP_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* JSON text written as plain C tokens, e.g. SMCP_JSON({"type": "object"}): the preprocessor
 * turns it into a string literal, escaping the quotes, so schemas stay readable. Macros inside
 * are not expanded (so true and false stay JSON), and whitespace runs become one space. */
#define SMCP_JSON(...) #__VA_ARGS__

/* JSON-RPC and MCP error codes used by the SDK. */
#define SMCP_PARSE_ERROR (-32700)
#define SMCP_INVALID_REQUEST (-32600)
#define SMCP_METHOD_NOT_FOUND (-32601)
#define SMCP_INVALID_PARAMS (-32602)
#define SMCP_INTERNAL_ERROR (-32603)

/* ---------------------------------------------------------------------------------------------
 * Arena memory and the libc subset
 * ------------------------------------------------------------------------------------------- */

/* Returns n zeroed bytes aligned to 8, valid until the next message; NULL when memory is
 * exhausted (the instance's memory limit was reached). A request that ran out of memory is
 * answered with a JSON-RPC internal error (-32603) whatever the handler wrote. */
void *smcp_arena_alloc(size_t n);

/* Copies n bytes of s into the arena and NUL-terminates them; NULL when out of memory. */
char *smcp_strndup(const char *s, size_t n);

/* smcp_strndup(s, strlen(s)). */
char *smcp_strdup(const char *s);

/* Bytes of the arena in use by the current message (diagnostics and tests). */
size_t smcp_arena_used(void);

/* True when s and t are equal NUL-terminated strings (either may be NULL: then false). */
bool smcp_streq(const char *s, const char *t);

/* True when the n bytes at s are well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool smcp_utf8_valid(const char *s, size_t n);

/* The freestanding build has no libc; the SDK defines these with their standard meaning. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Growable buffers: a string builder that is also the JSON writer's output
 * ------------------------------------------------------------------------------------------- */

#define SMCP_MAX_DEPTH 64 /* nesting limit of the JSON reader */
/* The writer allows 16 levels more, so any parsed value fits inside a reply's envelope. */
#define SMCP_MAX_WRITE_DEPTH (SMCP_MAX_DEPTH + 16)

/* A growable byte buffer in the arena. `data` holds `len` bytes; once any operation failed
 * (out of memory, or a JSON writer misuse) `failed` is set and later operations do nothing.
 * The remaining fields are the JSON writer's state; treat the whole struct as read-only. */
typedef struct smcp_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
    bool after_key; /* a member name was written; its value comes next */
    uint8_t depth;  /* open objects and arrays */
    uint8_t open[SMCP_MAX_WRITE_DEPTH]; /* per open container: 1 array, 2 object, +4 used */
} smcp_buf;

/* A new empty buffer with room for about cap_hint bytes; NULL when out of memory. */
smcp_buf *smcp_buf_new(size_t cap_hint);

/* Empties b (keeping its storage) and resets the JSON writer state. */
void smcp_buf_reset(smcp_buf *b);

/* Appends raw bytes (no JSON escaping). Return false once b has failed. */
bool smcp_buf_putn(smcp_buf *b, const char *s, size_t n);
bool smcp_buf_puts(smcp_buf *b, const char *s);
bool smcp_buf_putc(smcp_buf *b, char c);

/* Appends a number in decimal. A double is written as the shortest decimal that reads back as
 * the same double (0.1, 0.30000000000000004, 1e+21), in plain notation for magnitudes from
 * 1e-6 up to 1e21 and in exponent notation outside, as JavaScript prints numbers; NaN and
 * infinities have no JSON spelling and are written as null. */
bool smcp_buf_put_int(smcp_buf *b, int64_t v);
bool smcp_buf_put_uint(smcp_buf *b, uint64_t v);
bool smcp_buf_put_double(smcp_buf *b, double v);

/* Appends unix_ms (milliseconds since the Unix epoch) as ISO-8601 UTC with milliseconds,
 * e.g. 2026-11-25T17:04:05.123Z (proleptic Gregorian calendar, years 0000-9999). */
bool smcp_buf_put_time(smcp_buf *b, int64_t unix_ms);

/* The contents as a NUL-terminated string (the NUL is not counted in len); NULL if b failed. */
const char *smcp_buf_cstr(smcp_buf *b);

/* ---------------------------------------------------------------------------------------------
 * JSON writer (appends to an smcp_buf, inserting commas itself)
 *
 *   smcp_buf *w = smcp_buf_new(256);
 *   smcp_w_obj(w);
 *   smcp_w_kstr(w, "title", title);
 *   smcp_w_key(w, "tags"); smcp_w_arr(w); smcp_w_str(w, "a"); smcp_w_arr_end(w);
 *   smcp_w_obj_end(w);
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are written as U+FFFD.
 * Misuse (a value where a member name is required, unbalanced ends, nesting deeper than
 * SMCP_MAX_WRITE_DEPTH) marks the buffer failed instead of producing invalid JSON.
 * ------------------------------------------------------------------------------------------- */

void smcp_w_obj(smcp_buf *w);     /* { */
void smcp_w_obj_end(smcp_buf *w); /* } */
void smcp_w_arr(smcp_buf *w);     /* [ */
void smcp_w_arr_end(smcp_buf *w); /* ] */

/* A member name inside an object; the next call must write its value. */
void smcp_w_key(smcp_buf *w, const char *key);
void smcp_w_keyn(smcp_buf *w, const char *key, size_t n);

/* Values. smcp_w_str(w, NULL) writes null. */
void smcp_w_str(smcp_buf *w, const char *s);
void smcp_w_strn(smcp_buf *w, const char *s, size_t n);
void smcp_w_int(smcp_buf *w, int64_t v);
void smcp_w_double(smcp_buf *w, double v);
void smcp_w_bool(smcp_buf *w, bool v);
void smcp_w_null(smcp_buf *w);

/* Inserts n bytes of JSON text as one value, unchecked: the caller vouches that it is valid. */
void smcp_w_raw(smcp_buf *w, const char *json, size_t n);

/* Writes a parsed value back out as compact JSON (smcp_w_null for NULL). */
struct smcp_json;
void smcp_w_value(smcp_buf *w, const struct smcp_json *v);

/* Member shorthands: smcp_w_key(w, key) followed by the value. */
void smcp_w_kstr(smcp_buf *w, const char *key, const char *s);
void smcp_w_kint(smcp_buf *w, const char *key, int64_t v);
void smcp_w_kdouble(smcp_buf *w, const char *key, double v);
void smcp_w_kbool(smcp_buf *w, const char *key, bool v);

/* ---------------------------------------------------------------------------------------------
 * JSON reader: parses RFC 8259 JSON into a read-only tree in the arena
 * ------------------------------------------------------------------------------------------- */

typedef enum smcp_json_type {
    SMCP_JSON_NULL,
    SMCP_JSON_BOOL,
    SMCP_JSON_NUMBER,
    SMCP_JSON_STRING,
    SMCP_JSON_ARRAY,
    SMCP_JSON_OBJECT,
} smcp_json_type;

/* One parsed value. Children of arrays and objects form a list: `child` is the first,
 * `next` the following sibling. Read the fields directly or use the accessors below. */
typedef struct smcp_json {
    smcp_json_type type;
    const char *raw; /* the value's exact source text (e.g. to copy an id verbatim) ... */
    size_t raw_len;  /* ... and its length */
    const char *key; /* member name (unescaped, NUL-terminated) inside an object, else NULL */
    size_t key_len;
    struct smcp_json *next;  /* next sibling in the parent, or NULL */
    struct smcp_json *child; /* first element or member of an array or object, or NULL */
    size_t count;            /* number of elements or members of an array or object */
    const char *str;         /* SMCP_JSON_STRING: unescaped UTF-8, NUL-terminated ... */
    size_t len;              /* ... and its length in bytes (it may contain NUL bytes) */
    double num;              /* SMCP_JSON_NUMBER, correctly rounded from the literal */
    bool boolean;            /* SMCP_JSON_BOOL */
} smcp_json;

/* Parses len bytes of JSON text. Rejects anything RFC 8259 does not allow (trailing commas,
 * comments, leading zeros, control characters in strings), invalid UTF-8, \u escapes that
 * encode lone surrogates, and nesting deeper than SMCP_MAX_DEPTH. Duplicate member names are
 * kept; lookups return the last one (as Python's json module does). Returns NULL on error and
 * sets *error (if error is not NULL) to a message that names the byte offset. */
smcp_json *smcp_json_parse(const char *text, size_t len, const char **error);

/* Member of an object by name (the last one if repeated), or NULL. */
const smcp_json *smcp_json_get(const smcp_json *obj, const char *key);

/* Element i of an array, or NULL when out of range. */
const smcp_json *smcp_json_at(const smcp_json *arr, size_t i);

/* The string value, or NULL when v is not a string. */
const char *smcp_json_str(const smcp_json *v);

/* Stores v's value in *out and returns true when v has the right type. smcp_json_int accepts
 * only numbers that are integers representable as int64 (so 3 and 3.0, but not 3.5 or 1e30). */
bool smcp_json_int(const smcp_json *v, int64_t *out);
bool smcp_json_double(const smcp_json *v, double *out);
bool smcp_json_bool(const smcp_json *v, bool *out);
bool smcp_json_is_null(const smcp_json *v);

/* Shorthands: the same on smcp_json_get(obj, key). */
const char *smcp_json_get_str(const smcp_json *obj, const char *key);
bool smcp_json_get_int(const smcp_json *obj, const char *key, int64_t *out);
bool smcp_json_get_double(const smcp_json *obj, const char *key, double *out);
bool smcp_json_get_bool(const smcp_json *obj, const char *key, bool *out);

/* Compact JSON text of v (NUL-terminated, length in *len if len is not NULL); NULL on OOM. */
const char *smcp_json_dump(const smcp_json *v, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Host imports (module "smcp"), wrapped. Returned strings live in the arena.
 * ------------------------------------------------------------------------------------------- */

/* Writes a line to the box's own log (for the operator, not the client). level is one of
 * debug, info, notice, warning, error, critical, alert, emergency. */
void smcp_log(const char *level, const char *message);

/* A tenant setting from [config] in tenant.toml (or a secret the admin set), or NULL when it
 * is not set. *len (if not NULL) receives its length. */
const char *smcp_config_get(const char *key, size_t *len);

/* The tenant's persistent key-value store. Keys and values are UTF-8 strings (JSON text is the
 * usual value; the box rejects invalid UTF-8). smcp_kv_get returns NULL for a missing key. */
const char *smcp_kv_get(const char *key, size_t *len);

/* Result codes of the kv writes (smcp_kv_set, smcp_kv_delete, smcp_kv_cas, smcp_kv_incr). */
#define SMCP_KV_OK 0
#define SMCP_KV_QUOTA (-1)       /* the tenant's storage quota would be exceeded */
#define SMCP_KV_FAILURE (-2)     /* the box could not store the change; try again later */
#define SMCP_KV_NOT_INTEGER (-3) /* smcp_kv_incr: the value is not a decimal integer, or the
                                    sum overflows int64; nothing was written */

/* Stores len bytes under key (replacing any value). Returns SMCP_KV_OK or a negative code. */
int smcp_kv_set(const char *key, const char *value, size_t len);

/* Removes key; SMCP_KV_OK also when it was absent. Returns a negative code on failure. */
int smcp_kv_delete(const char *key);

/* Concurrency: the box runs several calls of one tenant at once, each in its own instance
 * (memory is never shared), and each kv function is atomic on its own. A read followed by a
 * write (smcp_kv_get, then smcp_kv_set) can lose another call's write in between: use
 * smcp_kv_cas or smcp_kv_incr for read-modify-write. */

/* Compare-and-set: stores len bytes of value under key only if the key's current value is
 * exactly the expected_len bytes at expected, or, when expected is NULL, only if the key is
 * absent. Returns 1 when it wrote, 0 when the current value differs (nothing written; read it
 * again and retry), or SMCP_KV_QUOTA / SMCP_KV_FAILURE. Imports smcp.kv_cas. */
int smcp_kv_cas(const char *key, const char *expected, size_t expected_len, const char *value,
                size_t len);

/* Atomically adds delta to the decimal integer stored under key (absent counts as 0) and
 * stores the sum back as decimal text; *out (if not NULL) receives the new value. Returns
 * SMCP_KV_OK, SMCP_KV_QUOTA, SMCP_KV_FAILURE or SMCP_KV_NOT_INTEGER (nothing written). The
 * way to hand out unique ids: smcp_kv_incr("next_id", 1, &id). Imports smcp.kv_incr. */
int smcp_kv_incr(const char *key, int64_t delta, int64_t *out);

/* The keys that start with prefix, as a parsed JSON array of strings in ascending order;
 * NULL if the host's answer could not be read. */
const smcp_json *smcp_kv_list(const char *prefix);

/* A short English explanation of a negative kv result code. */
const char *smcp_kv_strerror(int rc);

/* Sends a complete JSON-RPC notification (json, len) to the caller's stream. Prefer the typed
 * smcp_progress and smcp_log_message below. */
void smcp_notify(const char *json, size_t len);

/* The host's wall clock in milliseconds since the Unix epoch (UTC). */
int64_t smcp_time_now_ms(void);

/* Waits ms milliseconds without using a processor (the call gives its run slot up). The call's
 * wall-clock limit still counts: a sleep past it ends the call with -32052. */
void smcp_sleep_ms(int64_t ms);

/* The most bytes one smcp_random_bytes call fills. */
#define SMCP_RANDOM_MAX 65536

/* Fills buf with len bytes from the host's cryptographically secure random generator (the
 * module has no other source of randomness). len over SMCP_RANDOM_MAX fails the whole call
 * (-32054), so ask in pieces for more. Returns 0. Imports smcp.random_bytes. */
int smcp_random_bytes(void *buf, size_t len);

/* --- Blobs (docs/abi.md 2.8) ----------------------------------------------------------------
 * Files the tenant keeps beside its kv store (reports/2026-12.pdf), read and written a piece at
 * a time through handles that live for one call. A blob being written is invisible until
 * smcp_blob_close commits it; a handle left open when the call ends is abandoned (the old
 * blob stays). Names are paths of letters, digits, '.', '_' and '-' separated by '/'. */

#define SMCP_BLOB_READ 0
#define SMCP_BLOB_WRITE 1
#define SMCP_BLOB_QUOTA (-1)      /* a blob quota (size, total bytes, count) would be exceeded */
#define SMCP_BLOB_FAILURE (-2)    /* the box could not read or store it (or it is damaged) */
#define SMCP_BLOB_NOT_FOUND (-3)  /* no blob by that name */
#define SMCP_BLOB_BAD_NAME (-4)   /* the name or content type is not allowed */
#define SMCP_BLOB_BAD_HANDLE (-5) /* not an open handle (or opened the other way), or too many */
/* The most bytes one smcp_blob_read or smcp_blob_write moves; more fails the whole call. */
#define SMCP_BLOB_IO_MAX (1024 * 1024)

/* Opens name for reading (SMCP_BLOB_READ) or for writing a new version (SMCP_BLOB_WRITE, with
 * content_type such as "text/plain", or NULL for application/octet-stream). Returns a handle
 * (> 0) or a negative code. Imports smcp.blob_open. */
int smcp_blob_open(const char *name, int mode, const char *content_type);

/* Reads the next up to len bytes into buf: the count read, 0 at the end, or a negative code. */
int smcp_blob_read(int handle, void *buf, size_t len);

/* Appends len bytes. Returns 0 or a negative code (the write is then abandoned). */
int smcp_blob_write(int handle, const void *buf, size_t len);

/* Closes a handle; for a write, commits it (the blob changes now, all at once). Returns 0 or
 * a negative code (SMCP_BLOB_QUOTA: nothing was kept). */
int smcp_blob_close(int handle);

/* {"name", "size", "contentType", "sha256", "updatedAt"} of a blob, or NULL when absent. */
const smcp_json *smcp_blob_stat(const char *name);

/* An array of those objects for the blobs whose name starts with prefix, by name. */
const smcp_json *smcp_blob_list(const char *prefix);

/* 1 if name was deleted, 0 if there was none, or a negative code. */
int smcp_blob_delete(const char *name);

/* A short English explanation of a negative blob result code. */
const char *smcp_blob_strerror(int rc);

/* --- SHA-256 (FIPS 180-4) ------------------------------------------------------------------- */

#define SMCP_SHA256_LEN 32

/* Streaming state: init, update with any number of pieces, then final (which ends it). */
typedef struct smcp_sha256_ctx {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;    /* bytes in block */
    uint64_t total; /* bytes hashed so far */
} smcp_sha256_ctx;

void smcp_sha256_init(smcp_sha256_ctx *s);
void smcp_sha256_update(smcp_sha256_ctx *s, const void *data, size_t n);
void smcp_sha256_final(smcp_sha256_ctx *s, uint8_t out[SMCP_SHA256_LEN]);
/* The digest of n bytes in one call. */
void smcp_sha256(const void *data, size_t n, uint8_t out[SMCP_SHA256_LEN]);

/* ---------------------------------------------------------------------------------------------
 * The MCP server: declare what the tenant offers, the SDK does the protocol
 * ------------------------------------------------------------------------------------------- */

/* The request being handled. Opaque; valid only during the handler call. */
typedef struct smcp_ctx smcp_ctx;

/* A tool: called for tools/call with the request's `arguments` object (never NULL: an absent
 * `arguments` is passed as an empty object). The handler answers with smcp_tool_* calls.
 * The SDK does not check arguments against input_schema: a handler validates what it reads,
 * most easily with the smcp_arg_* helpers, which report bad arguments as tool errors. */
typedef void (*smcp_tool_fn)(smcp_ctx *ctx, const smcp_json *args);

typedef struct smcp_tool {
    const char *name;          /* required, unique */
    const char *title;         /* optional human-readable name */
    const char *description;   /* required: what the tool does, for the model */
    const char *input_schema;  /* JSON Schema text of the arguments; NULL: {"type":"object"} */
    const char *output_schema; /* optional JSON Schema text of structuredContent */
    const char *annotations;   /* optional JSON object text, e.g. {"readOnlyHint":true} */
    smcp_tool_fn call;
    /* optional: "optional" or "required" lets calls run as durable tasks (docs/tasks.md),
     * listed as execution.taskSupport; NULL (the default) never does. */
    const char *task_support;
} smcp_tool;

/* A prompt argument. Prompt arguments are strings; the SDK rejects a prompts/get that lacks a
 * required one with -32602 before calling the handler. */
typedef struct smcp_prompt_arg {
    const char *name;
    const char *description;
    bool required;
} smcp_prompt_arg;

/* A prompt: called for prompts/get with the `arguments` object (never NULL). The handler adds
 * messages with smcp_prompt_message. */
typedef void (*smcp_prompt_fn)(smcp_ctx *ctx, const smcp_json *args);

typedef struct smcp_prompt {
    const char *name;
    const char *title;
    const char *description;
    const smcp_prompt_arg *args;
    size_t nargs;
    smcp_prompt_fn get;
} smcp_prompt;

/* Reads a resource: the handler answers with smcp_resource_text (or smcp_resource_not_found;
 * answering nothing also means "not found"). */
typedef void (*smcp_resource_fn)(smcp_ctx *ctx, const char *uri);

/* A resource. In smcp_server.resources (static ones, with `read`) or passed to
 * smcp_resource_add from list_resources (dynamic ones; `read` is ignored there). */
typedef struct smcp_resource {
    const char *uri;
    const char *name;
    const char *title;
    const char *description;
    const char *mime_type;
    smcp_resource_fn read;
} smcp_resource;

/* A resource template (RFC 6570 URI template such as "note://{id}"), listed by
 * resources/templates/list; reads of matching URIs go to smcp_server.read_resource. */
typedef struct smcp_resource_template {
    const char *uri_template;
    const char *name;
    const char *title;
    const char *description;
    const char *mime_type;
} smcp_resource_template;

/* A completion/complete request, already validated. */
typedef struct smcp_completion_request {
    const char *ref_type;       /* "ref/prompt" or "ref/resource" */
    const char *ref;            /* the prompt name or the resource (template) URI */
    const char *argument;       /* the argument being completed */
    const char *value;          /* what the user typed so far */
    const smcp_json *arguments; /* context.arguments: values already chosen (maybe NULL) */
} smcp_completion_request;

/* Everything the tenant offers. Define it once with SMCP_SERVER(...). Only `name` and
 * `version` are required; capabilities are announced for what is present. */
typedef struct smcp_server {
    const char *name;         /* serverInfo.name */
    const char *version;      /* serverInfo.version */
    const char *title;        /* serverInfo.title (optional) */
    const char *instructions; /* initialize's instructions for the model (optional) */
    const smcp_tool *tools;
    size_t ntools;
    const smcp_resource *resources;
    size_t nresources;
    void (*list_resources)(smcp_ctx *ctx); /* adds dynamic resources with smcp_resource_add */
    smcp_resource_fn read_resource;        /* reads URIs that are not in `resources` */
    const smcp_resource_template *templates;
    size_t ntemplates;
    const smcp_prompt *prompts;
    size_t nprompts;
    /* Answers completion/complete with smcp_completion_add; announces `completions`. */
    void (*complete)(smcp_ctx *ctx, const smcp_completion_request *req);
    /* Any other request method: answer with smcp_result or smcp_error and return true, or
     * return false for "method not found". */
    bool (*on_request)(smcp_ctx *ctx);
    /* Notifications from the client (notifications/initialized, .../cancelled, ...). */
    void (*on_notification)(const char *method, const smcp_json *params);
    /* Capabilities announced in initialize (all false by default). Set one only if the tenant
     * sends the matching notification when something changes: tools_list_changed,
     * prompts_list_changed and resources_list_changed with smcp_notify_list_changed,
     * resources_subscribe with smcp_notify_resource_updated. The box delivers them to the
     * clients that subscribed (subscriptions/listen, resources/subscribe); a module never sees
     * a subscription itself. */
    bool tools_list_changed;
    bool prompts_list_changed;
    bool resources_list_changed;
    bool resources_subscribe;
} smcp_server;

/* The tenant's one server definition, looked up by the SDK. */
extern const smcp_server smcp_server_def;
#define SMCP_SERVER(...) const smcp_server smcp_server_def = {__VA_ARGS__}

/* --- the request ---------------------------------------------------------------------------- */

/* The request's method, e.g. "tools/call". */
const char *smcp_ctx_method(const smcp_ctx *ctx);
const smcp_json *smcp_ctx_params(const smcp_ctx *ctx); /* NULL when absent */
const smcp_json *smcp_ctx_meta(const smcp_ctx *ctx);   /* params._meta, NULL when absent */

/* True once the reply is a JSON-RPC error or the tool result is marked isError. */
bool smcp_ctx_failed(const smcp_ctx *ctx);

/* --- durable tasks (docs/tasks.md) ---------------------------------------------------------- */

/* True when this call may become a task: the client negotiated tasks and the tool declares
 * task_support. A tool that expects to run long then calls smcp_task_escalate and returns. */
bool smcp_task_may_escalate(const smcp_ctx *ctx);

/* Answers "run me as a task": the box replies to the client with a task id and calls the tool
 * again in the background, where smcp_task_id is set. Without smcp_task_may_escalate it
 * answers a JSON-RPC error instead. */
void smcp_task_escalate(smcp_ctx *ctx);

/* The id of the task this call runs for (the box's background call), or NULL. */
const char *smcp_task_id(const smcp_ctx *ctx);

/* --- tool results (inside a smcp_tool_fn) --------------------------------------------------- */

/* Appends a text content item to the result. */
void smcp_tool_text(smcp_ctx *ctx, const char *text);
void smcp_tool_textn(smcp_ctx *ctx, const char *text, size_t n);

/* Marks the result isError: true and appends message as text content: the way a tool reports
 * its own failure (bad arguments, a missing note) to the model, per MCP. */
void smcp_tool_error(smcp_ctx *ctx, const char *message);

/* Sets structuredContent to the JSON object text (json, n) and also appends it as text
 * content, as MCP recommends for clients that do not read structuredContent. */
void smcp_tool_structured(smcp_ctx *ctx, const char *json, size_t n);

/* Argument helpers. The plain ones require the argument: when it is missing or of the wrong
 * type they report a tool error naming it and return NULL/false, so a handler can write
 * `if (!title) return;`. The _opt ones return dflt when the argument is absent (or null)
 * and report an error (returning NULL/false) only when it has the wrong type. Used outside
 * tools/call (say in a prompt handler) they answer with a -32602 error instead. */
const char *smcp_arg_str(smcp_ctx *ctx, const smcp_json *args, const char *name);
const char *smcp_arg_str_opt(smcp_ctx *ctx, const smcp_json *args, const char *name,
                             const char *dflt);
bool smcp_arg_int(smcp_ctx *ctx, const smcp_json *args, const char *name, int64_t *out);
bool smcp_arg_int_opt(smcp_ctx *ctx, const smcp_json *args, const char *name, int64_t *out,
                      int64_t dflt);
bool smcp_arg_double(smcp_ctx *ctx, const smcp_json *args, const char *name, double *out);
bool smcp_arg_bool_opt(smcp_ctx *ctx, const smcp_json *args, const char *name, bool *out,
                       bool dflt);

/* --- prompts, resources, completions -------------------------------------------------------- */

/* Appends a message (role "user" or "assistant") with text content to a prompts/get result. */
void smcp_prompt_message(smcp_ctx *ctx, const char *role, const char *text);
void smcp_prompt_messagen(smcp_ctx *ctx, const char *role, const char *text, size_t n);

/* Inside list_resources: lists one resource. */
void smcp_resource_add(smcp_ctx *ctx, const smcp_resource *resource);

/* Inside a resource reader: appends a text content item for uri. */
void smcp_resource_text(smcp_ctx *ctx, const char *uri, const char *mime_type, const char *text,
                        size_t n);

/* Inside a resource reader: answers "resource not found" (-32602 with data.uri). */
void smcp_resource_not_found(smcp_ctx *ctx, const char *uri);

/* Inside complete: offers one value. The first 100 are sent; hasMore tells about the rest. */
void smcp_completion_add(smcp_ctx *ctx, const char *value);

/* --- low level ------------------------------------------------------------------------------ */

/* Answers with a JSON-RPC error instead of a result, discarding anything written so far.
 * data_json (may be NULL) is the error's `data` member as JSON text. */
void smcp_error(smcp_ctx *ctx, int code, const char *message);
void smcp_error_data(smcp_ctx *ctx, int code, const char *message, const char *data_json);

/* Inside on_request: returns the writer positioned at the reply's `result` value; write
 * exactly one JSON value to it. NULL if the reply was already started or failed. */
smcp_buf *smcp_result(smcp_ctx *ctx);

/* --- notifications -------------------------------------------------------------------------- */

/* Sends notifications/progress for the current request if the client asked for progress
 * (params._meta.progressToken); returns false (sending nothing) otherwise. total <= 0 means
 * "unknown" and is omitted; message may be NULL. */
bool smcp_progress(smcp_ctx *ctx, double progress, double total, const char *message);

/* Sends notifications/message (an MCP log message for the client) with the given level,
 * logger name (may be NULL) and text as `data`. The box drops messages below the level the
 * client set with logging/setLevel. */
void smcp_log_message(smcp_ctx *ctx, const char *level, const char *logger, const char *text);

/* The same with `data` given as JSON text (any JSON value). */
void smcp_log_message_json(smcp_ctx *ctx, const char *level, const char *logger,
                           const char *data_json, size_t n);

/* Sends notifications/<list>/list_changed, list being "tools", "prompts" or "resources": the
 * tenant's list changed and clients should list it again. The box routes it to the clients
 * that subscribed, not to the caller's response stream. Declare the matching *_list_changed
 * flag in SMCP_SERVER. */
void smcp_notify_list_changed(const char *list);

/* Sends notifications/resources/updated for uri: its content changed and subscribed clients
 * should read it again. The box delivers it only to clients subscribed to that URI (legacy
 * resources/subscribe, or resourceSubscriptions of subscriptions/listen). Declare
 * .resources_subscribe = true in SMCP_SERVER. */
void smcp_notify_resource_updated(const char *uri);

#endif /* SMCP_H */
