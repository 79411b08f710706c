/* Storage and rendering shared by the notes tenant's tools, resources and prompts. */
#ifndef NOTES_STORE_H
#define NOTES_STORE_H

#include "smcp.h"

/* The kv key of note id: "note:" and the id as 10 digits. */
const char *note_key(int64_t id);

/* The stored note as a JSON object, or NULL when there is none (or it is unreadable). */
const smcp_json *load_note(int64_t id);

/* The note stored under key (a string element of note_keys()), or NULL. */
const smcp_json *load_by_key(const smcp_json *key);

/* The keys of all notes, in id order, as a JSON array of strings (NULL if unavailable). */
const smcp_json *note_keys(void);

/* Writes the note; on a kv failure reports a tool error and returns false. */
bool save_note(smcp_ctx *ctx, int64_t id, const char *title, const smcp_json *body,
               const smcp_json *tags, int64_t created, int64_t updated);

/* Hands out the next free id (0 after reporting a kv failure). */
int64_t next_id(smcp_ctx *ctx);

/* True when rc is SMCP_KV_OK; otherwise reports it as the tool's error. */
bool kv_ok(smcp_ctx *ctx, int rc);

/* Appends the note as Markdown: title, body, then tags and timestamps. */
void put_markdown(smcp_buf *b, const smcp_json *note);

/* Writes {"id","title","tags","updated_ms"} of the note with the JSON writer. */
void put_summary(smcp_buf *w, const smcp_json *note);

#endif
