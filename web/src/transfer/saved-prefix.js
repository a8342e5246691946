// @ts-check
// How much of a file already on disk a download can keep: its whole blocks are hashed
// again and compared with the block hashes the sharer announced when they were received;
// the first block that differs (changed on disk, never written, cut short) is where the
// download continues. The file's SHA-256 state is rebuilt over the kept blocks, so the
// final check still covers every byte of the file.
import { createSHA256 } from "hash-wasm";
import { BLOCK } from "./blocks.js";

const READ_BLOCKS = 4; // blocks per read: fewer, larger reads of the file on disk

/**
 * @param {(start: number, end: number) => Promise<Uint8Array>} read bytes [start, end) of the file on disk
 * @param {number} onDisk the file's length on disk
 * @param {number} size the file's size as the sharer lists it
 * @param {string[]} hashes hex hash of each block, as announced by the sharer, from block 0
 * @returns {Promise<{verified: number, whole: import("hash-wasm").IHasher}>} `verified` is block aligned
 */
export async function savedPrefix(read, onDisk, size, hashes) {
  const whole = await createSHA256();
  const part = await createSHA256();
  whole.init();
  // Only whole blocks count (the file's last block, shorter, is fetched again: one block at most).
  const blocks = Math.min(Math.floor(Math.min(onDisk, size) / BLOCK), hashes.length);
  let verified = 0;
  for (let i = 0; i < blocks; i += READ_BLOCKS) {
    const end = Math.min(blocks, i + READ_BLOCKS) * BLOCK;
    const buf = await read(i * BLOCK, end);
    if (buf.byteLength !== end - i * BLOCK) break; // the file shrank under us: keep what was checked
    for (let p = 0; p < buf.byteLength; p += BLOCK) {
      const block = buf.subarray(p, p + BLOCK);
      part.init();
      part.update(block);
      if (part.digest("hex") !== hashes[verified / BLOCK]) return { verified, whole };
      whole.update(block);
      verified += BLOCK;
    }
  }
  return { verified, whole };
}
