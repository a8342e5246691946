// @ts-check
// Writes a download into a file the person chose (File System Access), so that a reload
// can continue it from the bytes on disk. Chromium writes to a swap file ("name.crswap")
// and puts it in place only on close(): bytes not yet closed are lost with the page. So
// the file is committed (closed, then opened again with its data kept, which copies the
// file into a new swap file) now and then: when the bytes not yet committed reach the
// bytes already committed (at least MIN_COMMIT), so all the copying stays within about one
// file's size; and sooner (a quarter of that, at least URGENT_COMMIT) when the page is
// hidden (the tab may be discarded) or the connection is lost (nothing arrives anyway).

export const MIN_COMMIT = 64 << 20;
export const URGENT_COMMIT = 8 << 20;

/** MIN_COMMIT, or a smaller one a browser test sets (to commit within a small file). */
function minCommit() {
  const forTests = /** @type {any} */ (globalThis).__peaMinCommit;
  return Number.isFinite(forTests) && forTests > 0 ? forTests : MIN_COMMIT;
}

/**
 * Is this file worth asking where to save it? A smaller one is not committed before it
 * ends (unless the page is hidden), so a reload would start it over anyway: it goes
 * straight to the downloads folder, without a dialog.
 * @param {number} size
 */
export function worthChoosing(size) {
  return size >= minCommit();
}

/** The smallest file the page asks where to save (for the page to say so). */
export const chooseFrom = minCommit;

/** Does this browser let the page write to a file the person chooses? */
export function canSaveToFile(win = globalThis) {
  return !!win.isSecureContext && typeof (/** @type {any} */ (win).showSaveFilePicker) === "function";
}

/**
 * Is it time to commit? Copying a committed file costs its length, so commits wait until
 * the new bytes are worth it.
 * @param {number} committed bytes already in the file for good
 * @param {number} pending bytes written since
 * @param {boolean} urgent the page is hidden, or the connection lost
 */
export function shouldCommit(committed, pending, urgent) {
  if (urgent) return pending >= Math.max(URGENT_COMMIT, committed / 4);
  return pending >= Math.max(minCommit(), committed);
}

export class SaveFile {
  /**
   * @param {any} handle a FileSystemFileHandle the person chose (or one kept from before a reload)
   * @param {{onCommit?: (committed: number) => unknown, doc?: EventTarget & {visibilityState: string}}} [options]
   */
  constructor(handle, { onCommit, doc = globalThis.document } = {}) {
    this.handle = handle;
    this.onCommit = onCommit;
    /** @type {any} */
    this.writable = null;
    this.committed = 0;
    this.written = 0;
    /** @type {Promise<unknown>} every operation on the file, one after another */
    this.chain = Promise.resolve();
    this.closed = false;
    /** @type {unknown} the first failure: the file is not written any further */
    this.failed = null;
    this.doc = doc;
    this.onHidden = () => {
      if (doc.visibilityState === "hidden") this.flush().catch(() => {}); // a failed write shows on the next one
    };
    doc?.addEventListener?.("visibilitychange", this.onHidden);
  }

  /**
   * Run `op` after every operation before it. Once one has failed, every later one fails
   * the same way: bytes lost in a failed commit must never leave a gap in the file.
   * @template T @param {() => Promise<T>} op @returns {Promise<T>}
   */
  queue(op) {
    const p = this.chain.then(async () => {
      if (this.failed) throw this.failed;
      try {
        return await op();
      } catch (err) {
        this.failed = err;
        throw err;
      }
    });
    this.chain = p.catch(() => {});
    return p;
  }

  /** Write from byte `at` on: what comes before is kept, what comes after is dropped. @param {number} at */
  open(at) {
    return this.queue(async () => {
      this.writable = await this.handle.createWritable({ keepExistingData: at > 0 });
      if (at > 0) await this.writable.truncate(at);
      this.committed = this.written = at;
    });
  }

  /** @param {Uint8Array} data */
  write(data) {
    return this.queue(async () => {
      if (!this.writable) this.writable = await this.handle.createWritable({ keepExistingData: true });
      await this.writable.write({ type: "write", position: this.written, data });
      this.written += data.byteLength;
      if (shouldCommit(this.committed, this.written - this.committed, false)) await this.commit();
    });
  }

  /** The page may go away (hidden, connection lost): commit now if enough is at stake. */
  flush() {
    return this.queue(async () => {
      if (this.writable && shouldCommit(this.committed, this.written - this.committed, true)) await this.commit();
    });
  }

  /** Put the written bytes in place; the file is opened again only when more comes. */
  async commit() {
    const w = this.writable;
    this.writable = null;
    await w.close();
    this.committed = this.written;
    await this.onCommit?.(this.committed);
  }

  /** Every byte is written: put the file in place. */
  finish() {
    return this.queue(async () => {
      this.stop();
      if (this.writable) await this.commit();
    });
  }

  /** The download failed: keep what was committed (it may be continued), drop the rest. */
  abort() {
    return this.queue(async () => {
      this.stop();
      const w = this.writable;
      this.writable = null;
      await w?.abort().catch(() => {});
    });
  }

  stop() {
    this.closed = true;
    this.doc?.removeEventListener?.("visibilitychange", this.onHidden);
  }

  /** Write a stream to the file, then put it in place. @param {ReadableStream<Uint8Array>} stream */
  async drain(stream) {
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      await this.write(value);
    }
    await this.finish();
  }
}
