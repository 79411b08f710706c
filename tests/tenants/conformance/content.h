/* content.h - writing tool results, prompt messages and resource contents that carry more than
 * the SDK's text helpers do: images, audio, embedded resources and blobs. Each writer appends
 * to the raw result a handler opened with smcp_result(). */
#ifndef CONFORMANCE_CONTENT_H
#define CONFORMANCE_CONTENT_H

#include "smcp.h"

/* A 1x1 red PNG and 8 samples of 8 kHz 8-bit silence as WAV, base64 (generated once with
 * Python's zlib/struct and wave modules; tests/conformance checks that they decode). */
extern const char PNG_RED_PIXEL_B64[];
extern const char WAV_SILENCE_B64[];

/* Opens {"content":[ on the raw result of a tools/call handler; NULL if the reply was already
 * started (then the handler must not write). Close with tool_result_end. */
smcp_buf *tool_result_begin(smcp_ctx *ctx);
void tool_result_end(smcp_buf *w, bool is_error);

/* smcp_buf_new that never returns NULL: when the arena is exhausted it returns a buffer that is
 * already failed, so writes are no-ops (the SDK then answers -32603 out of memory anyway). */
smcp_buf *buf_new(size_t cap_hint);

/* "<a><b><c>" in the arena, for messages that quote a name; never NULL. */
const char *str3(const char *a, const char *b, const char *c);

/* Content blocks (inside a content array, or as a prompt message's content). */
void content_text(smcp_buf *w, const char *text);
void content_image_png(smcp_buf *w);
void content_audio_wav(smcp_buf *w);
void content_resource_text(smcp_buf *w, const char *uri, const char *mime_type, const char *text);

/* {"role":role,"content": <one block written by the caller>}: begin, write one block, end. */
void prompt_message_begin(smcp_buf *w, const char *role);
void prompt_message_end(smcp_buf *w);

/* Opens {"messages":[ (with description) on the raw result of a prompts/get handler. */
smcp_buf *prompt_result_begin(smcp_ctx *ctx, const char *description);
void prompt_result_end(smcp_buf *w);

/* A resources/read answer with one blob item: {"contents":[{uri,mimeType,blob}]}. */
void resource_blob(smcp_ctx *ctx, const char *uri, const char *mime_type, const char *blob_b64);

#endif
