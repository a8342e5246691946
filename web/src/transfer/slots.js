// @ts-check
// How many files one receiver may have in flight from the sharer. Each running upload
// holds a read-ahead block (READ_BLOCK) and the channel's send buffer in the sharer's
// memory, so a receiver opening hundreds of `get` channels must not get hundreds of
// uploads: a few run, a bounded number wait their turn, the rest are refused `busy`.

export const ACTIVE_UPLOADS = 4;
export const WAITING_UPLOADS = 64;

export class Slots {
  /** @param {number} active @param {number} waiting */
  constructor(active = ACTIVE_UPLOADS, waiting = WAITING_UPLOADS) {
    this.active = active;
    this.waiting = waiting;
    this.running = 0;
    /** @type {Array<() => void>} */
    this.queue = [];
  }

  /**
   * A promise of a release function once a slot is free, or null at once when the
   * waiting line is full (the caller refuses the upload).
   * @returns {Promise<() => void> | null}
   */
  acquire() {
    if (this.running < this.active) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.waiting) return null;
    return new Promise((resolve) => this.queue.push(() => resolve(this.releaser())));
  }

  /** @returns {() => void} */
  releaser() {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      // A slot freed passes straight to the next in line: `running` stays the same.
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    };
  }
}
