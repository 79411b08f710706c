// Formatting helpers, in a module of their own to show that a tenant may have several files.

/** The #tags of a text, lower-cased, without the #, each once. */
export function tagsOf(text) {
  // ASCII only: the engine's regular expressions have no Unicode property classes.
  const tags = (text.match(/#[A-Za-z0-9_-]+/g) ?? []).map((tag) => tag.slice(1).toLowerCase());
  return [...new Set(tags)];
}

/** One Markdown list line for a note. */
export function noteLine(note) {
  return `- ${note.text} (#${note.id})`;
}
