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

/* Stores a new note under a fresh id and returns the id; 0 after reporting a failure as the
 * tool's error. Safe when calls run in parallel: no two get one id, no note is overwritten. */
int64_t create_note(smcp_ctx *ctx, const char *title, const smcp_json *body,
                    const smcp_json *tags, int64_t now);

/* What note_update changes: NULL members keep the stored value. */
typedef struct note_change {
    const char *title;
    const smcp_json *body; /* a JSON string */
    const smcp_json *tags; /* a JSON array of strings */
    /* Reports a missing note as the tool's error. */
    void (*missing)(smcp_ctx *ctx, int64_t id);
    /* Checks the merged title and body, reporting a tool error when they do not fit. */
    bool (*check)(smcp_ctx *ctx, const char *title, const smcp_json *body);
} note_change;

/* Applies the change to note id with compare-and-set, redoing it on top of any change another
 * call made meanwhile; false after reporting a failure (or the missing note) as tool error. */
bool update_note(smcp_ctx *ctx, int64_t id, const note_change *change);

/* True when rc is SMCP_KV_OK; otherwise reports it as the tool's error. */
bool kv_ok(smcp_ctx *ctx, int rc);

/* Appends the note as Markdown: title, body, then tags and timestamps. */
void put_markdown(smcp_buf *b, const smcp_json *note);

/* Writes {"id","title","tags","updated_ms"} of the note with the JSON writer. */
void put_summary(smcp_buf *w, const smcp_json *note);

#endif
