// @ts-check
// Blocks of a file (docs/transfer-protocol.md §3.2–3.3): the fixed block size, the
// hashes a sharer computes once per file (each block's SHA-256 and the whole file's,
// in one pass), and the exact messages of a `get` that names where to start. No DOM,
// no worker: the hash worker, both transfer sides and the node test vectors use it.
import { createSHA256 } from "hash-wasm";

export const BLOCK = 1 << 20; // fixed by protocol version 3, never negotiated
export const MAX_REFETCH = 3; // re-fetches of one block before the download fails

/** @param {number} size */
export function blockCount(size) {
  return Math.ceil(size / BLOCK);
}

/** Bytes in block `i` of a file of `size` bytes. @param {number} size @param {number} i */
export function blockLength(size, i) {
  return Math.max(0, Math.min(BLOCK, size - i * BLOCK));
}

/** Is `from` a starting offset the protocol allows for a file of `size` bytes? */
export function validFrom(from, size) {
  return Number.isSafeInteger(from) && from >= 0 && from <= size && (from % BLOCK === 0 || from === size);
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** @param {unknown} s */
export function isHash(s) {
  return typeof s === "string" && HEX64.test(s);
}

/**
 * @typedef {{sha256: string, blocks: Uint8Array}} FileHashes
 * `sha256`: hex of the whole file's SHA-256; `blocks`: the n block hashes, 32 bytes each, end to end.
 */

/**
 * Block hashes and whole-file hash in one pass over the file.
 * @param {(start: number, end: number) => Promise<Uint8Array>} read bytes [start, end) of the file
 * @param {number} size
 * @param {{readSize?: number, pause?: () => Promise<void>}} [options] readSize: a multiple of BLOCK
 * @returns {Promise<FileHashes>}
 */
export async function hashFile(read, size, { readSize = 4 * BLOCK, pause } = {}) {
  const whole = await createSHA256();
  const part = await createSHA256();
  whole.init();
  const blocks = new Uint8Array(blockCount(size) * 32);
  for (let at = 0; at < size; at += readSize) {
    await pause?.();
    const end = Math.min(size, at + readSize);
    const buf = await read(at, end);
    if (buf.byteLength !== end - at) throw new Error("the file changed size while it was being hashed");
    whole.update(buf);
    for (let p = 0; p < buf.byteLength; p += BLOCK) {
      part.init();
      part.update(buf.subarray(p, Math.min(p + BLOCK, buf.byteLength)));
      blocks.set(part.digest("binary"), ((at + p) / BLOCK) * 32);
    }
  }
  return { sha256: whole.digest("hex"), blocks };
}

/**
 * Hex of a block's SHA-256. WebCrypto where the page has it: native code, 3–4 times
 * cheaper than WebAssembly per byte (docs/benchmarks.md); `fallback` (a hash-wasm hasher)
 * where it does not: pages served over plain HTTP on a LAN address are not a secure context.
 * @param {Uint8Array} bytes
 * @param {import("hash-wasm").IHasher | null} fallback
 * @param {SubtleCrypto | null} [subtle] which WebCrypto (tests pass none: null)
 * @returns {Promise<string>}
 */
export async function blockDigest(bytes, fallback, subtle = globalThis.crypto?.subtle) {
  if (subtle) return toHex(new Uint8Array(await subtle.digest("SHA-256", /** @type {Uint8Array<ArrayBuffer>} */ (bytes))));
  if (!fallback) throw new Error("no SHA-256 available");
  fallback.init();
  fallback.update(bytes);
  return fallback.digest("hex");
}

/** Hex of block `i`'s hash. @param {Uint8Array} blocks @param {number} i */
export function blockHash(blocks, i) {
  return toHex(blocks.subarray(i * 32, i * 32 + 32));
}

// The messages of a `get` channel, field order as in the document's test vectors.
/** @param {string} file @param {number} from */
export const getMessage = (file, from) => ({ t: "get", file, from });
/** @param {number} size @param {string} sha256 @param {number} from */
export const metaMessage = (size, sha256, from) => ({ t: "meta", size, sha256, block: BLOCK, from });
/** @param {number} i @param {string} sha256 */
export const blockMessage = (i, sha256) => ({ t: "block", i, sha256 });
/** @param {number} size @param {string} sha256 */
export const endMessage = (size, sha256) => ({ t: "end", size, sha256 });

/**
 * Does a `meta` from the sharer describe the file the receiver asked for, from where it asked?
 * @param {any} m @param {number} size @param {number} from
 */
export function metaFits(m, size, from) {
  return m?.t === "meta" && m.size === size && m.block === BLOCK && m.from === from && isHash(m.sha256);
}
