// @ts-check
// The control channel's framing, for both sides (docs/transfer-protocol.md): the
// sharer's `hello`, and the manifest as `add` messages of at most MANIFEST_BATCH
// entries. The receiving side reads every entry as hostile: what does not have the
// documented shape is dropped, one entry at a time.
import { VERSION } from "./protocol.js";

export const MANIFEST_BATCH = 200; // entries per `add` message, far below any message size limit

/** @typedef {{id: string, name: string, path: string, size: number, type: string, mtime: number}} FileEntry */
/** @typedef {{id: string, text: string}} NoteEntry */

/** Is this the sharer's `hello` of our protocol version (anything else is refused)? @param {any} m */
export function readHello(m) {
  return m?.t === "hello" && m.v === VERSION;
}

/** The sharer's first message on the control channel. */
export function helloMessage() {
  return { t: "hello", v: VERSION, app: "pea-web" };
}

/**
 * A shared file as it goes on the wire: only the documented fields, never the File.
 * @param {FileEntry} rec
 * @returns {FileEntry}
 */
export function fileEntry(rec) {
  return { id: rec.id, name: rec.name, path: rec.path, size: rec.size, type: rec.type, mtime: rec.mtime };
}

/**
 * What is added to the share, as `add` messages: files first, then notes, in batches.
 * @param {{files?: FileEntry[], notes?: NoteEntry[]}} delta
 */
export function addMessages({ files = [], notes = [] }) {
  const out = [];
  for (let i = 0; i < files.length; i += MANIFEST_BATCH) out.push({ t: "add", files: files.slice(i, i + MANIFEST_BATCH).map(fileEntry), notes: [] });
  for (let i = 0; i < notes.length; i += MANIFEST_BATCH) out.push({ t: "add", files: [], notes: notes.slice(i, i + MANIFEST_BATCH) });
  return out;
}

/**
 * The entries of a parsed `add` message that have the documented shape; null for any other message.
 * @param {any} m a parsed control message (see protocol.js parse)
 * @returns {{files: FileEntry[], notes: NoteEntry[]} | null}
 */
export function readAdd(m) {
  if (m?.t !== "add") return null;
  /** @type {FileEntry[]} */
  const files = [];
  for (const f of Array.isArray(m.files) ? m.files : []) {
    if (!f || typeof f.id !== "string" || !f.id || f.id.length > 64 || typeof f.name !== "string" || !Number.isSafeInteger(f.size) || f.size < 0) continue;
    files.push({ id: f.id, name: f.name, path: typeof f.path === "string" ? f.path : f.name, size: f.size, type: typeof f.type === "string" ? f.type : "", mtime: Number(f.mtime) || Date.now() });
  }
  /** @type {NoteEntry[]} */
  const notes = [];
  for (const n of Array.isArray(m.notes) ? m.notes : []) if (n && typeof n.text === "string") notes.push({ id: String(n.id), text: n.text });
  return { files, notes };
}
