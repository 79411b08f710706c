/* content.c - see content.h. */
#include "content.h"

const char PNG_RED_PIXEL_B64[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC";
const char WAV_SILENCE_B64[] =
    "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

smcp_buf *buf_new(size_t cap_hint) {
    static smcp_buf exhausted;
    smcp_buf *b = smcp_buf_new(cap_hint);
    if (b == NULL) {
        memset(&exhausted, 0, sizeof exhausted);
        exhausted.failed = true;
        b = &exhausted;
    }
    return b;
}

const char *str3(const char *a, const char *b, const char *c) {
    smcp_buf *m = buf_new(strlen(a) + strlen(b) + strlen(c) + 1);
    smcp_buf_puts(m, a);
    smcp_buf_puts(m, b);
    smcp_buf_puts(m, c);
    const char *s = smcp_buf_cstr(m);
    return s != NULL ? s : "out of memory";
}

smcp_buf *tool_result_begin(smcp_ctx *ctx) {
    smcp_buf *w = smcp_result(ctx);
    if (w != NULL) {
        smcp_w_obj(w);
        smcp_w_key(w, "content");
        smcp_w_arr(w);
    }
    return w;
}

void tool_result_end(smcp_buf *w, bool is_error) {
    smcp_w_arr_end(w);
    smcp_w_kbool(w, "isError", is_error);
    smcp_w_obj_end(w);
}

void content_text(smcp_buf *w, const char *text) {
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "text");
    smcp_w_kstr(w, "text", text);
    smcp_w_obj_end(w);
}

void content_image_png(smcp_buf *w) {
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "image");
    smcp_w_kstr(w, "data", PNG_RED_PIXEL_B64);
    smcp_w_kstr(w, "mimeType", "image/png");
    smcp_w_obj_end(w);
}

void content_audio_wav(smcp_buf *w) {
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "audio");
    smcp_w_kstr(w, "data", WAV_SILENCE_B64);
    smcp_w_kstr(w, "mimeType", "audio/wav");
    smcp_w_obj_end(w);
}

void content_resource_text(smcp_buf *w, const char *uri, const char *mime_type, const char *text) {
    smcp_w_obj(w);
    smcp_w_kstr(w, "type", "resource");
    smcp_w_key(w, "resource");
    smcp_w_obj(w);
    smcp_w_kstr(w, "uri", uri);
    smcp_w_kstr(w, "mimeType", mime_type);
    smcp_w_kstr(w, "text", text);
    smcp_w_obj_end(w);
    smcp_w_obj_end(w);
}

void prompt_message_begin(smcp_buf *w, const char *role) {
    smcp_w_obj(w);
    smcp_w_kstr(w, "role", role);
    smcp_w_key(w, "content");
}

void prompt_message_end(smcp_buf *w) { smcp_w_obj_end(w); }

smcp_buf *prompt_result_begin(smcp_ctx *ctx, const char *description) {
    smcp_buf *w = smcp_result(ctx);
    if (w != NULL) {
        smcp_w_obj(w);
        if (description != NULL) {
            smcp_w_kstr(w, "description", description);
        }
        smcp_w_key(w, "messages");
        smcp_w_arr(w);
    }
    return w;
}

void prompt_result_end(smcp_buf *w) {
    smcp_w_arr_end(w);
    smcp_w_obj_end(w);
}

void resource_blob(smcp_ctx *ctx, const char *uri, const char *mime_type, const char *blob_b64) {
    smcp_buf *w = smcp_result(ctx);
    if (w == NULL) {
        return;
    }
    smcp_w_obj(w);
    smcp_w_key(w, "contents");
    smcp_w_arr(w);
    smcp_w_obj(w);
    smcp_w_kstr(w, "uri", uri);
    smcp_w_kstr(w, "mimeType", mime_type);
    smcp_w_kstr(w, "blob", blob_b64);
    smcp_w_obj_end(w);
    smcp_w_arr_end(w);
    smcp_w_obj_end(w);
}
