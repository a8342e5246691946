// The link's secret never reaches the server: everything the server learns
// (the room) and everything peers sign is derived from it here, with hash-wasm,
// because crypto.subtle is missing on plain-HTTP LAN addresses and one code
// path everywhere is the only way not to break silently there.
import { createHMAC, createSHA256 } from "hash-wasm";
import { b64url } from "./util.js";

const enc = new TextEncoder();
export const SECRET_RE = /^[A-Za-z0-9_-]{22,86}$/;

export function newSecret() {
  const b = new Uint8Array(16); // 128 random bits, as PROTOCOL.md asks of rooms
  crypto.getRandomValues(b);
  return b64url(b);
}

async function hmac(key, message) {
  const h = await createHMAC(createSHA256(), key);
  h.init();
  h.update(message);
  return h.digest("binary");
}

/** room = b64url(HMAC-SHA256(secret, "pea room v1")); key = HMAC-SHA256(secret, "pea signal key v1"). */
export async function deriveKeys(secret) {
  const s = enc.encode(secret);
  const room = b64url(await hmac(s, "pea room v1"));
  const key = await hmac(s, "pea signal key v1");
  return { room, key };
}

function equal(a, b) {
  if (typeof a !== "string" || typeof b !== "string" || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Signs and checks what peers send each other through the server. The MAC
 * covers sender and recipient as the sender saw them, so the server can
 * neither alter a message nor redirect it to another peer.
 */
export class Signer {
  static async create(key) {
    const s = new Signer();
    s.h = await createHMAC(createSHA256(), key);
    return s;
  }
  mac(kind, from, to, payload) {
    this.h.init();
    this.h.update(`pea-signal-v1\n${kind}\n${from}\n${to}\n${payload}`);
    return this.h.digest("hex");
  }
  seal(kind, from, to, payload) {
    return { v: 1, kind, payload, mac: this.mac(kind, from, to, payload) };
  }
  /** The envelope's payload if it verifies, else null. */
  open(data, from, to) {
    if (!data || typeof data !== "object" || typeof data.kind !== "string" || typeof data.payload !== "string")
      return null;
    return equal(this.mac(data.kind, from, to, data.payload), data.mac) ? data.payload : null;
  }
}
