// @ts-check
// Downloads saved into a file the person chose (File System Access), remembered in
// IndexedDB so that a reloaded or discarded page continues them: the file's handle (which
// IndexedDB can hold), the share it came from and the file as that share lists it, the
// SHA-256 its sharer announced, and the announced hash of each block written for good.
// A record is found again only by the same share listing a file of the same path, size
// and date; the bytes on disk are then checked against the stored block hashes, and a
// sharer that now announces another SHA-256 gets nothing resumed (receive.js: "changed").

const DB = "pea-resume";
const STORE = "downloads";
export const MAX_AGE_MS = 7 * 24 * 3600 * 1000; // an older record is forgotten: nobody will reopen that link

/**
 * @typedef {{key: string, room: string, path: string, name: string, size: number, mtime: number,
 *   sha256: string, hashes: string[], committed: number, updated: number, handle: any}} ResumeRecord
 * `committed`: bytes the file on disk holds for good; `hashes`: those of its whole blocks.
 */

/** The key of a file of a share: the room and the file as the sharer lists it. @param {string} room @param {{path?: string, name: string, size: number, mtime?: number}} f */
export function recordKey(room, f) {
  return JSON.stringify([room, f.path ?? f.name, f.size, f.mtime ?? 0]);
}

/** Is a record too old, or malformed (written by another version), to be kept? @param {any} rec @param {number} now */
export function isStale(rec, now) {
  return (
    !rec ||
    typeof rec.key !== "string" ||
    !Number.isFinite(rec.updated) ||
    now - rec.updated > MAX_AGE_MS ||
    !Array.isArray(rec.hashes) ||
    typeof rec.sha256 !== "string" ||
    typeof rec.handle?.createWritable !== "function"
  );
}

/** Can this record continue the file `f` of room `room` (not stale, the very same listing)? @param {any} rec @param {string} room @param {any} f @param {number} now */
export function fits(rec, room, f, now) {
  return !isStale(rec, now) && rec.key === recordKey(room, f) && rec.size === f.size;
}

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** @type {Promise<IDBDatabase> | null} */
let db = null;

/**
 * One request in its own transaction.
 * @template T
 * @param {IDBTransactionMode} mode @param {(s: IDBObjectStore) => IDBRequest<T>} act
 * @returns {Promise<T>}
 */
async function run(mode, act) {
  db ??= open();
  const d = await db;
  return new Promise((resolve, reject) => {
    const tx = d.transaction(STORE, mode);
    const req = act(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** IndexedDB may be missing or refused (private windows): no record, no resume, nothing worse. */
function quietly(p, fallback) {
  return p.catch((err) => {
    console.warn("pea: downloads cannot be remembered across a reload here:", err?.message || err);
    return fallback;
  });
}

/** @param {ResumeRecord} rec */
export function saveRecord(rec) {
  return quietly(
    run("readwrite", (s) => s.put(rec)),
    undefined,
  );
}

/** @param {string} key */
export function forgetRecord(key) {
  return quietly(
    run("readwrite", (s) => s.delete(key)),
    undefined,
  );
}

/** The record that can continue file `f` of `room`, if any. @returns {Promise<ResumeRecord | null>} */
export async function findRecord(room, f) {
  const rec = await quietly(
    run("readonly", (s) => s.get(recordKey(room, f))),
    null,
  );
  return fits(rec, room, f, Date.now()) ? rec : null;
}

/** Forget every stale record (run once when a receiving page opens). */
export async function dropStale() {
  const all = await quietly(
    run("readonly", (s) => s.getAll()),
    [],
  );
  const now = Date.now();
  for (const rec of all) if (isStale(rec, now) && rec?.key !== undefined) await forgetRecord(rec.key);
}
