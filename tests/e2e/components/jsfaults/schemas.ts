// Types and schemas of the fault fixture, imported by app.ts with its .ts extension.

export type Chunk = Uint8Array;

export const NO_ARGUMENTS: { type: "object"; properties: Record<string, never> } = {
  type: "object",
  properties: {},
};
