// @ts-check
// Keeps the screen on while a transfer runs (Screen Wake Lock API), on both sides: a
// phone that locks may suspend the page, and with it the transfer. The browser drops the
// lock whenever the page is hidden; it is asked for again when the page is visible and a
// transfer still runs. Where the API is missing, `supported` is false and the views warn.

export class StayAwake {
  /**
   * @param {{wakeLock?: any}} [nav] the browser's navigator (a stand-in in tests)
   * @param {EventTarget & {visibilityState: string}} [doc]
   */
  constructor(nav = navigator, doc = document) {
    this.nav = nav;
    this.doc = doc;
    this.wanted = false;
    /** @type {any} */
    this.sentinel = null;
    /** @type {Promise<void> | null} */
    this.asking = null;
    doc.addEventListener("visibilitychange", () => {
      if (this.wanted && doc.visibilityState === "visible" && !this.sentinel) this.ask();
    });
  }

  get supported() {
    return typeof this.nav.wakeLock?.request === "function";
  }

  /** Say whether a transfer runs now; idempotent, called on every render. @param {boolean} on */
  want(on) {
    if (on === this.wanted) return;
    this.wanted = on;
    if (on) this.ask();
    else this.letGo();
  }

  ask() {
    if (!this.supported || this.asking || this.sentinel) return;
    this.asking = (async () => {
      try {
        const s = await this.nav.wakeLock.request("screen");
        s.addEventListener?.("release", () => {
          if (this.sentinel === s) this.sentinel = null;
        });
        this.sentinel = s;
        // The transfer may have ended while the browser was deciding.
        if (!this.wanted) this.letGo();
      } catch (err) {
        // Refused (page hidden, battery saver, a permissions policy): the transfer runs anyway.
        console.info("pea: the screen may lock during this transfer:", err?.message || err);
      } finally {
        this.asking = null;
      }
    })();
  }

  letGo() {
    const s = this.sentinel;
    this.sentinel = null;
    s?.release?.().catch(() => {});
  }
}
