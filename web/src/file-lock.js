// @ts-check
// One tab at a time saves a share's file into a chosen file. Two tabs of this browser
// continuing the same download would each write their own swap file and replace the file
// with it when they commit: the last to commit would undo the other's bytes, and a file
// one tab calls saved and verified could lose its end.

/**
 * Hold this browser's lock for `key`, or null if another tab holds it. Browsers without Web
 * Locks go unguarded (as before the lock).
 * @param {string} key
 * @returns {Promise<(() => void) | null>} call it to let go
 */
export function holdFile(key) {
  const locks = globalThis.navigator?.locks;
  if (!locks) return Promise.resolve(() => {});
  return new Promise((resolve, reject) => {
    locks
      .request(`pea-save:${key}`, { ifAvailable: true }, (lock) => {
        if (!lock) return resolve(null);
        // Held until the returned promise settles: until the caller lets go.
        return new Promise((release) => resolve(() => release(undefined)));
      })
      .catch(reject);
  });
}
