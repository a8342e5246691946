// @ts-check
// Reads a file for an upload, in pieces of READ_BLOCK bytes, one piece ahead of the one
// being sent. Where the browser's Blob streams take a caller's buffer (a "BYOB" reader),
// the pieces are read into two buffers used again and again: `slice().arrayBuffer()`
// makes a new 4 MiB buffer per piece, and in a browser writing into new memory costs
// several times the copy itself (docs/benchmarks.md, "Where pea's CPU goes"). Elsewhere
// it falls back to `slice().arrayBuffer()`.
import { READ_BLOCK } from "./protocol.js";

export class PieceReader {
  /**
   * @param {Blob} file @param {number} from where the first piece starts @param {number} size the file's size when shared
   * @param {{piece?: number}} [options] piece size (tests use a small one)
   */
  constructor(file, from, size, { piece = READ_BLOCK } = {}) {
    this.file = file;
    this.at = from;
    this.size = size;
    this.piece = piece;
    /** @type {ReadableStreamBYOBReader | null} */
    this.reader = null;
    try {
      this.reader = file.slice(from, size).stream().getReader({ mode: "byob" });
    } catch {}
    /** @type {ArrayBuffer[]} buffers free for the next piece */
    this.free = [];
    /** Buffers made for pieces so far (two, however long the file, when reusing). */
    this.made = 0;
  }

  /** Whether pieces go into reused buffers (else each piece is a new one). */
  get reusing() {
    return this.reader !== null;
  }

  /**
   * The next piece: min(piece, what is left) bytes, or fewer when the file got shorter
   * (the caller refuses it then). Rejects when the file can no longer be read.
   * @returns {Promise<Uint8Array>}
   */
  async next() {
    const want = Math.min(this.piece, this.size - this.at);
    const start = this.at;
    this.at += want;
    if (!this.reader) return new Uint8Array(await this.file.slice(start, start + want).arrayBuffer());
    let buf = this.free.pop() ?? this.make();
    let got = 0;
    while (got < want) {
      // The reader takes the buffer and gives it back as `value.buffer` (same memory).
      const { value, done } = await this.reader.read(new Uint8Array(buf, got, want - got));
      if (!value) break;
      buf = /** @type {ArrayBuffer} */ (value.buffer);
      got += value.byteLength;
      if (done) break;
    }
    return new Uint8Array(buf, 0, got);
  }

  /** @returns {ArrayBuffer} */
  make() {
    this.made++;
    return new ArrayBuffer(this.piece);
  }

  /** A piece returned by next() has been sent: its buffer takes the piece after next. @param {Uint8Array} piece */
  done(piece) {
    if (this.reader && piece.buffer.byteLength === this.piece && this.free.length < 2) this.free.push(/** @type {ArrayBuffer} */ (piece.buffer));
  }

  /** Stop reading (the upload ended, whatever the reason). */
  close() {
    this.reader?.cancel().catch(() => {});
    this.reader = null;
  }
}
