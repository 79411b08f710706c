/*
 * utils - a public toolbox tenant: hashes, base64, clock, unit conversion, JSON queries, a
 * long-running prime counter that reports progress, and a logging demo.
 *
 * It keeps no state. Its one setting, `greeting` in [config], is read by the hello tool.
 */
#include "hash.h"
#include "smcp.h"
#include "jsonpath.h"
#include "units.h"

#define MAX_PRIMES_N 10000000 /* a sieve this size costs ~0.3 s and well under the fuel cap */
#define PROGRESS_STEPS 10

static void tool_echo(smcp_ctx *ctx, const smcp_json *args) {
    const smcp_json *text = smcp_json_get(args, "text");
    if (smcp_arg_str(ctx, args, "text") != NULL) {
        smcp_tool_textn(ctx, text->str, text->len);
    }
}

static void tool_hello(smcp_ctx *ctx, const smcp_json *args) {
    const char *name = smcp_arg_str_opt(ctx, args, "name", "world");
    if (name == NULL) {
        return;
    }
    const char *greeting = smcp_config_get("greeting", NULL);
    smcp_buf *b = smcp_buf_new(64);
    smcp_buf_puts(b, greeting != NULL ? greeting : "Hello");
    smcp_buf_puts(b, ", ");
    smcp_buf_puts(b, name);
    smcp_buf_puts(b, "!");
    smcp_tool_text(ctx, smcp_buf_cstr(b));
}

static void tool_hash(smcp_ctx *ctx, const smcp_json *args) {
    const smcp_json *text = smcp_json_get(args, "text");
    const char *algorithm = smcp_arg_str_opt(ctx, args, "algorithm", "sha256");
    if (smcp_arg_str(ctx, args, "text") == NULL || algorithm == NULL) {
        return;
    }
    uint8_t digest[32];
    size_t n;
    if (smcp_streq(algorithm, "sha256")) {
        sha256(text->str, text->len, digest);
        n = 32;
    } else if (smcp_streq(algorithm, "sha1")) {
        sha1(text->str, text->len, digest);
        n = 20;
    } else if (smcp_streq(algorithm, "md5")) {
        md5(text->str, text->len, digest);
        n = 16;
    } else {
        smcp_tool_error(ctx, "unknown algorithm; use one of: sha256, sha1, md5");
        return;
    }
    char hex[65];
    hex_encode(digest, n, hex);
    smcp_buf *b = smcp_buf_new(128);
    smcp_w_obj(b);
    smcp_w_kstr(b, "algorithm", algorithm);
    smcp_w_kstr(b, "hex", hex);
    smcp_w_obj_end(b);
    smcp_tool_structured(ctx, b->data, b->len);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void tool_base64_encode(smcp_ctx *ctx, const smcp_json *args) {
    const smcp_json *text = smcp_json_get(args, "text");
    bool url_safe;
    if (smcp_arg_str(ctx, args, "text") == NULL ||
        !smcp_arg_bool_opt(ctx, args, "url_safe", &url_safe, false)) {
        return;
    }
    const uint8_t *in = (const uint8_t *)text->str;
    size_t n = text->len;
    smcp_buf *b = smcp_buf_new(n / 3 * 4 + 8);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= in[i + 2];
        }
        char quad[4];
        for (int k = 0; k < 4; k++) {
            char c = B64[(v >> (18 - 6 * k)) & 63];
            if (url_safe && (c == '+' || c == '/')) {
                c = c == '+' ? '-' : '_';
            }
            quad[k] = c;
        }
        if (i + 1 >= n) {
            quad[2] = '=';
        }
        if (i + 2 >= n) {
            quad[3] = '=';
        }
        smcp_buf_putn(b, quad, 4);
    }
    smcp_tool_textn(ctx, b->data, b->len);
}

static int b64_value(char c) {
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    for (int i = 0; i < 64; i++) {
        if (B64[i] == c) {
            return i;
        }
    }
    return -1;
}

static void tool_base64_decode(smcp_ctx *ctx, const smcp_json *args) {
    const smcp_json *data = smcp_json_get(args, "data");
    if (smcp_arg_str(ctx, args, "data") == NULL) {
        return;
    }
    smcp_buf *out = smcp_buf_new(data->len);
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    size_t symbols = 0;
    for (size_t i = 0; i < data->len; i++) {
        char c = data->str[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0) {
            smcp_tool_error(ctx, v < 0 ? "invalid base64: a character outside A-Z a-z 0-9 + / - _ ="
                                       : "invalid base64: data after '=' padding");
            return;
        }
        symbols++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            smcp_buf_putc(out, (char)((acc >> bits) & 0xFF));
        }
    }
    if (symbols % 4 == 1 || pad > 2 || (pad > 0 && (symbols + pad) % 4 != 0)) {
        smcp_tool_error(ctx, "invalid base64: wrong length or padding");
        return;
    }
    if (smcp_utf8_valid(out->data, out->len)) {
        smcp_tool_textn(ctx, out->data, out->len);
        return;
    }
    /* Text content must be UTF-8; show binary results as hex instead of mangling them. */
    smcp_buf *msg = smcp_buf_new(out->len * 2 + 64);
    smcp_buf_puts(msg, "decoded ");
    smcp_buf_put_uint(msg, out->len);
    smcp_buf_puts(msg, " bytes that are not UTF-8 text; hex: ");
    static const char hexdig[] = "0123456789abcdef";
    for (size_t i = 0; i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        smcp_buf_putc(msg, hexdig[c >> 4]);
        smcp_buf_putc(msg, hexdig[c & 15]);
    }
    smcp_tool_textn(ctx, msg->data, msg->len);
}

static void tool_now(smcp_ctx *ctx, const smcp_json *args) {
    (void)args;
    int64_t ms = smcp_time_now_ms();
    smcp_buf *iso = smcp_buf_new(32);
    smcp_buf_put_time(iso, ms);
    smcp_buf *b = smcp_buf_new(96);
    smcp_w_obj(b);
    smcp_w_key(b, "iso");
    smcp_w_strn(b, iso->data, iso->len);
    smcp_w_kint(b, "unix_ms", ms);
    smcp_w_obj_end(b);
    smcp_tool_structured(ctx, b->data, b->len);
}

static void tool_convert_units(smcp_ctx *ctx, const smcp_json *args) {
    double value;
    const char *from = smcp_arg_str(ctx, args, "from");
    const char *to = smcp_arg_str(ctx, args, "to");
    if (!smcp_arg_double(ctx, args, "value", &value) || from == NULL || to == NULL) {
        return;
    }
    double result;
    const char *err = NULL;
    const unit *uf = unit_find(from);
    const unit *ut = unit_find(to);
    if (!unit_convert(value, uf, ut, &result, &err)) {
        smcp_buf *m = smcp_buf_new(256);
        if (uf == NULL || ut == NULL) {
            smcp_buf_puts(m, "unknown unit '");
            smcp_buf_puts(m, uf == NULL ? from : to);
            smcp_buf_puts(m, "'; known units: ");
            units_describe(m);
        } else {
            smcp_buf_puts(m, err);
        }
        smcp_tool_error(ctx, smcp_buf_cstr(m));
        return;
    }
    smcp_buf *b = smcp_buf_new(160);
    smcp_w_obj(b);
    smcp_w_kdouble(b, "value", value);
    smcp_w_kstr(b, "from", uf->names[0]);
    smcp_w_kdouble(b, "result", result);
    smcp_w_kstr(b, "to", ut->names[0]);
    smcp_w_kstr(b, "category", uf->category);
    smcp_w_obj_end(b);
    smcp_buf *t = smcp_buf_new(96);
    smcp_buf_put_double(t, value);
    smcp_buf_putc(t, ' ');
    smcp_buf_puts(t, uf->names[0]);
    smcp_buf_puts(t, " = ");
    smcp_buf_put_double(t, result);
    smcp_buf_putc(t, ' ');
    smcp_buf_puts(t, ut->names[0]);
    smcp_tool_text(ctx, smcp_buf_cstr(t));
    smcp_tool_structured(ctx, b->data, b->len);
}

static void tool_json_query(smcp_ctx *ctx, const smcp_json *args) {
    const smcp_json *doc_arg = smcp_json_get(args, "document");
    const char *path = smcp_arg_str_opt(ctx, args, "path", "");
    if (smcp_arg_str(ctx, args, "document") == NULL || path == NULL) {
        return;
    }
    const char *err = NULL;
    const smcp_json *doc = smcp_json_parse(doc_arg->str, doc_arg->len, &err);
    if (doc == NULL) {
        smcp_buf *m = smcp_buf_new(96);
        smcp_buf_puts(m, "document is not valid JSON: ");
        smcp_buf_puts(m, err);
        smcp_tool_error(ctx, smcp_buf_cstr(m));
        return;
    }
    const smcp_json *found = json_path(doc, path, &err);
    if (found == NULL) {
        smcp_tool_error(ctx, err);
        return;
    }
    size_t n;
    const char *text = smcp_json_dump(found, &n);
    smcp_tool_textn(ctx, text, n);
}

static void tool_count_primes(smcp_ctx *ctx, const smcp_json *args) {
    int64_t n;
    if (!smcp_arg_int(ctx, args, "n", &n)) {
        return;
    }
    if (n < 0 || n > MAX_PRIMES_N) {
        smcp_tool_error(ctx, "n must be between 0 and 10000000 (larger sieves would run into the "
                             "tenant's fuel and time limits)");
        return;
    }
    /* Segmented sieve: primes up to sqrt(n) first, then PROGRESS_STEPS slices of [0, n]. */
    int64_t root = 1;
    while ((root + 1) * (root + 1) <= n) {
        root++;
    }
    uint8_t *small = smcp_arena_alloc((size_t)root + 1);
    int64_t seg = (n + PROGRESS_STEPS) / PROGRESS_STEPS;
    uint8_t *mark = smcp_arena_alloc((size_t)seg);
    if (small == NULL || mark == NULL) {
        return; /* the SDK answers with an out-of-memory error */
    }
    for (int64_t i = 2; i * i <= root; i++) {
        if (!small[i]) {
            for (int64_t j = i * i; j <= root; j += i) {
                small[j] = 1;
            }
        }
    }
    int64_t count = 0;
    for (int step = 0; step < PROGRESS_STEPS; step++) {
        int64_t lo = step * seg;
        int64_t hi = lo + seg > n + 1 ? n + 1 : lo + seg;
        if (lo < hi) {
            memset(mark, 0, (size_t)(hi - lo));
            for (int64_t p = 2; p <= root; p++) {
                if (small[p]) {
                    continue;
                }
                int64_t start = (lo + p - 1) / p * p;
                if (start < p * p) {
                    start = p * p;
                }
                for (int64_t j = start; j < hi; j += p) {
                    mark[j - lo] = 1;
                }
            }
            for (int64_t k = lo < 2 ? 2 : lo; k < hi; k++) {
                count += !mark[k - lo];
            }
        }
        smcp_buf *msg = smcp_buf_new(64);
        smcp_buf_puts(msg, "sieved up to ");
        smcp_buf_put_int(msg, hi - 1 > 0 ? hi - 1 : 0);
        smcp_progress(ctx, step + 1, PROGRESS_STEPS, smcp_buf_cstr(msg));
    }
    smcp_buf *b = smcp_buf_new(64);
    smcp_w_obj(b);
    smcp_w_kint(b, "n", n);
    smcp_w_kint(b, "count", count);
    smcp_w_obj_end(b);
    smcp_tool_structured(ctx, b->data, b->len);
}

static void tool_log_demo(smcp_ctx *ctx, const smcp_json *args) {
    static const char *const levels[] = {"debug", "info", "notice", "warning", "error"};
    const char *message = smcp_arg_str_opt(ctx, args, "message", "hello from utils");
    if (message == NULL) {
        return;
    }
    for (size_t i = 0; i < SMCP_COUNT(levels); i++) {
        smcp_buf *b = smcp_buf_new(64);
        smcp_buf_puts(b, levels[i]);
        smcp_buf_puts(b, ": ");
        smcp_buf_puts(b, message);
        smcp_log_message(ctx, levels[i], "utils.log_demo", smcp_buf_cstr(b));
    }
    smcp_buf *data = smcp_buf_new(64);
    smcp_w_obj(data);
    smcp_w_kstr(data, "event", "log_demo");
    smcp_w_kint(data, "messages", (int64_t)SMCP_COUNT(levels));
    smcp_w_obj_end(data);
    smcp_log_message_json(ctx, "info", "utils.log_demo", data->data, data->len);
    smcp_log("info", "log_demo sent 6 log notifications");
    smcp_tool_text(ctx, "sent 6 notifications/message (debug, info, notice, warning, error, and "
                        "one with structured data); the box forwards those at or above the "
                        "level set with logging/setLevel");
}

static void read_units(smcp_ctx *ctx, const char *uri) {
    smcp_buf *b = smcp_buf_new(512);
    smcp_buf_puts(b, "Units known to convert_units (names are case-insensitive):\n");
    units_describe(b);
    smcp_buf_putc(b, '\n');
    smcp_resource_text(ctx, uri, "text/plain", b->data, b->len);
}

#define RO SMCP_JSON({"readOnlyHint": true, "openWorldHint": false})

static const smcp_tool tools[] = {
    {.name = "echo",
     .description = "Returns the given text unchanged.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"text": {"type": "string"}},
                                "required": ["text"]}),
     .annotations = RO,
     .call = tool_echo},
    {.name = "hello",
     .description = "Greets someone with the greeting configured for this tenant.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"name": {
                                    "type": "string", "description": "Who to greet"}}}),
     .annotations = RO,
     .call = tool_hello},
    {.name = "hash",
     .description = "Hex digest of the UTF-8 bytes of a text: sha256 (default), sha1 or md5.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "text": {"type": "string"},
         "algorithm": {"type": "string", "enum": ["sha256", "sha1", "md5"]}},
         "required": ["text"]}),
     .output_schema = SMCP_JSON({"type": "object", "properties": {
         "algorithm": {"type": "string"}, "hex": {"type": "string"}},
         "required": ["algorithm", "hex"]}),
     .annotations = RO,
     .call = tool_hash},
    {.name = "base64_encode",
     .description = "Base64 (RFC 4648) of the UTF-8 bytes of a text; url_safe uses - and _.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "text": {"type": "string"}, "url_safe": {"type": "boolean", "default": false}},
         "required": ["text"]}),
     .annotations = RO,
     .call = tool_base64_encode},
    {.name = "base64_decode",
     .description = "Decodes base64 (standard or URL-safe alphabet, padding optional) to text; "
                    "binary data is shown as hex.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"data": {"type": "string"}},
                                "required": ["data"]}),
     .annotations = RO,
     .call = tool_base64_decode},
    {.name = "now",
     .description = "The current time from the box's clock: ISO-8601 UTC and Unix milliseconds.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {}}),
     .output_schema = SMCP_JSON({"type": "object", "properties": {
         "iso": {"type": "string"}, "unix_ms": {"type": "integer"}},
         "required": ["iso", "unix_ms"]}),
     .annotations = SMCP_JSON({"readOnlyHint": true, "idempotentHint": false}),
     .call = tool_now},
    {.name = "convert_units",
     .description = "Converts a value between units of length, mass, temperature or data size "
                    "(e.g. mi to km, lb to kg, F to C, GiB to MB). See utils://units.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "value": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}},
         "required": ["value", "from", "to"]}),
     .output_schema = SMCP_JSON({"type": "object", "properties": {
         "value": {"type": "number"}, "from": {"type": "string"},
         "result": {"type": "number"}, "to": {"type": "string"},
         "category": {"type": "string"}},
         "required": ["value", "from", "result", "to", "category"]}),
     .annotations = RO,
     .call = tool_convert_units},
    {.name = "json_query",
     .description = "Selects part of a JSON document with a path such as a.b[2].c, "
                    "[\"key with.dots\"] or items[-1]; an empty path selects the whole document.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "document": {"type": "string", "description": "JSON text"},
         "path": {"type": "string", "default": ""}},
         "required": ["document"]}),
     .annotations = RO,
     .call = tool_json_query},
    {.name = "count_primes",
     .description = "Counts the primes <= n (n up to 10,000,000) with a sieve, reporting "
                    "progress in 10 steps when the request has a progressToken.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {
         "n": {"type": "integer", "minimum": 0, "maximum": 10000000}}, "required": ["n"]}),
     .output_schema = SMCP_JSON({"type": "object", "properties": {
         "n": {"type": "integer"}, "count": {"type": "integer"}}, "required": ["n", "count"]}),
     .annotations = RO,
     .call = tool_count_primes},
    {.name = "log_demo",
     .description = "Sends MCP log messages (notifications/message) at the levels debug, info, "
                    "notice, warning and error, to try out logging/setLevel.",
     .input_schema = SMCP_JSON({"type": "object", "properties": {"message": {"type": "string"}}}),
     .annotations = RO,
     .call = tool_log_demo},
};

static const smcp_resource resources[] = {
    {.uri = "utils://units",
     .name = "units",
     .title = "Units for convert_units",
     .description = "Every unit name convert_units accepts, by category.",
     .mime_type = "text/plain",
     .read = read_units},
};

SMCP_SERVER(.name = "utils", .version = "1.0.0", .title = "Utilities",
            .instructions = "Small deterministic helpers. Prefer these tools over mental "
                            "arithmetic for hashes, encodings, unit conversions and JSON paths.",
            .tools = tools, .ntools = SMCP_COUNT(tools), .resources = resources,
            .nresources = SMCP_COUNT(resources));
