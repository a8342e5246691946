// @ts-check
// What this browser has for pea, checked once when a page opens, as codes; the views
// turn codes into sentences (ui/unsupported.js). Nothing here throws: a browser missing
// a piece is told so at once, instead of failing later with a bare exception or waiting
// forever (hardened Firefox profiles and Tor Browser switch WebRTC off; WebKitGTK builds
// have none; Firefox private windows have no service workers).

// The most a download kept in memory (no service worker) is trusted with.
export const MEMORY_LIMIT_BYTES = 512 << 20;

/** Codes for what is missing to share or receive at all: [] when nothing is. */
export function missingForTransfer(win = globalThis) {
  const missing = [];
  if (typeof win.crypto?.getRandomValues !== "function") missing.push("no-random");
  if (typeof win.RTCPeerConnection !== "function") missing.push("no-webrtc");
  else if (!canOpenDataChannels(win)) missing.push("no-datachannel");
  return missing;
}

function canOpenDataChannels(win) {
  /** @type {RTCPeerConnection | null} */
  let pc = null;
  try {
    const made = new win.RTCPeerConnection({ iceServers: [] });
    pc = made;
    if (typeof made.createDataChannel !== "function") return false;
    made.createDataChannel("probe");
    return true;
  } catch {
    return false;
  } finally {
    try {
      pc?.close();
    } catch {}
  }
}

/**
 * How received files reach the disk: "stream" through a service worker, or "memory"
 * (gathered, then saved as a Blob) because the page is not a secure context ("insecure")
 * or the browser has no service workers here ("no-sw").
 */
export function downloadPath(win = globalThis) {
  if (!win.isSecureContext) return { mode: "memory", why: "insecure" };
  if (!("serviceWorker" in win.navigator)) return { mode: "memory", why: "no-sw" };
  return { mode: "stream", why: "" };
}

/**
 * The largest file worth keeping in memory: our own bound, lowered to what the browser
 * says it has room for (navigator.storage.estimate: large Blobs spill to that storage;
 * navigator.deviceMemory where given). A guess, not a promise: the view says "about".
 */
export async function memoryBudget(win = globalThis) {
  let budget = MEMORY_LIMIT_BYTES;
  try {
    const est = await win.navigator.storage?.estimate?.();
    if (est && typeof est.quota === "number" && Number.isFinite(est.quota)) budget = Math.min(budget, Math.max(0, est.quota - (Number(est.usage) || 0)));
  } catch {
    // No StorageManager (plain HTTP): our own bound is all we know.
  }
  const gib = /** @type {Navigator & {deviceMemory?: number}} */ (win.navigator).deviceMemory;
  if (typeof gib === "number" && Number.isFinite(gib) && gib > 0) budget = Math.min(budget, Math.floor((gib * 2 ** 30) / 4));
  return budget;
}
