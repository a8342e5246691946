// @ts-check
// The receiver's checks of one download, apart from the page: each 1 MiB block's SHA-256
// against the hash the sharer announced for it, and the whole file's SHA-256 over the
// blocks that passed, in file order. It runs in check-worker.js (so the page's thread,
// which also takes the channel's messages and feeds the download, does not pay for the
// whole-file hash in WebAssembly: 8 ms per MiB on the benchmark machine, ten times the
// native SHA-256 there; see docs/benchmarks.md) or in the page where workers are missing.
//
// Blocks come in the order they were received. Only the block at the verified offset
// that passes its check extends the file's hash; any other (a block of a channel given up
// after a failure, one already taken) is answered and left out: Download.checkBlock takes
// and leaves exactly the same ones, so the two always agree on the verified offset.
import { createSHA256 } from "hash-wasm";
import { blockDigest } from "./blocks.js";

export class BlockCheck {
  /**
   * @param {import("hash-wasm").IHasher} whole @param {import("hash-wasm").IHasher} part
   * @param {number} verified
   */
  constructor(whole, part, verified) {
    this.whole = whole;
    this.part = part;
    this.verified = verified;
    /** @type {Promise<unknown>} the last verdict: the next waits for it */
    this.chain = Promise.resolve();
  }

  /**
   * @param {number} verified bytes already checked (a saved prefix), hashed into `state`
   * @param {Uint8Array | null} [state] a SHA-256 state (hash-wasm's save()) over them
   */
  static async create(verified = 0, state = null) {
    const [whole, part] = await Promise.all([createSHA256(), createSHA256()]);
    whole.init();
    if (state) whole.load(state);
    return new BlockCheck(whole, part, verified);
  }

  /**
   * Does the block at file offset `at` match `hash` (hex)? A matching block at the verified
   * offset is added to the file's hash. Digests run side by side (WebCrypto answers in a
   * later task); verdicts, and the file's hash, are taken in the order blocks came.
   * @param {Uint8Array} block @param {number} at @param {string} hash
   * @returns {Promise<boolean>}
   */
  check(block, at, hash) {
    const digest = blockDigest(block, this.part);
    digest.catch(() => {}); // read in order below
    const verdict = this.chain.then(async () => {
      let got = "";
      try {
        got = await digest;
      } catch {}
      const ok = got === hash;
      if (ok && at === this.verified) {
        this.whole.update(block);
        this.verified += block.byteLength;
      }
      return ok;
    });
    this.chain = verdict;
    return verdict;
  }

  /** The file's SHA-256 (hex) over every block taken, once the blocks before have been checked. */
  async digest() {
    await this.chain;
    return this.whole.digest("hex");
  }
}
