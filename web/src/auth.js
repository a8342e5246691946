// @ts-check
// Everything pea proves with the link (docs/transfer-protocol.md, version 3).
// The link's secret never reaches the server: the room id the server sees and
// the key K that MACs every signal are derived from it here. The sharer also
// holds an Ed25519 key whose public key's hash is in the link, so only it can
// act as the sharer, even towards other holders of the link.
// noble (pure JS, synchronous) rather than crypto.subtle: subtle is missing on
// plain-HTTP LAN addresses, and synchronous checks keep signals in their order.
import { ed25519 } from "@noble/curves/ed25519.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { b64url } from "./util.js";

export const VERSION = 3;
const enc = new TextEncoder();
const B64_22 = "[A-Za-z0-9_-]{22}";
/** A v3 fragment: "3." secret "." commit. */
export const LINK_RE = new RegExp(`^3\\.(${B64_22})\\.(${B64_22})$`);
/** What version 2 links looked like, refused with an explanation. */
export const V2_LINK_RE = new RegExp(`^2\\.${B64_22}\\.${B64_22}$`);
/** What version 1 links looked like (a bare secret), refused with an explanation. */
export const V1_LINK_RE = /^[A-Za-z0-9_-]{22,86}$/;
const PEER_RE = /^[A-Za-z0-9_-]{1,64}$/; // peer ids never hold a newline, so M has one parse
const SID_RE = new RegExp(`^${B64_22}$`);
const KIND_RE = /^[a-z][a-z-]{0,31}$/;
/** Kinds a receiver accepts only from the sharer, so only with the sharer's signature. */
export const SHARER_KINDS = new Set(["offer", "candidate", "refuse"]);

/** base64url text → bytes, or null unless it is the canonical encoding (one text per byte string). */
export function fromB64url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  let bin;
  try {
    bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    return null;
  }
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return b64url(out) === text ? out : null;
}

function random(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b); // everywhere, unlike crypto.subtle and randomUUID
  return b;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** commit = b64url(first 16 bytes of SHA-256(public key)). */
export function commitOf(publicKey) {
  return b64url(sha256(publicKey).subarray(0, 16));
}

/**
 * Ed25519's first use builds a table of multiples of the base point (tens of ms on a slow
 * phone): a receiver does it while its WebSocket connects, not when the sharer's offer
 * arrives, which is when a person is waiting for the file list.
 */
export function warmUp() {
  ed25519.getPublicKey(new Uint8Array(32));
}

/** A new share: 16 random secret bytes and a fresh Ed25519 key pair, whose commitment goes in the link. */
export function newShare(seed = random(32)) {
  const secretKey = seed;
  const publicKey = ed25519.getPublicKey(secretKey);
  return { secret: b64url(random(16)), secretKey, publicKey, commit: commitOf(publicKey) };
}

export function fragmentOf(secret, commit) {
  return `3.${secret}.${commit}`;
}

/**
 * The fragment (without "#") → {version: 3, secret, commit}, {version: 2} or {version: 1} (older
 * links, refused by name), or null if it is no pea link.
 * @returns {{version: 3, secret: string, commit: string} | {version: 2} | {version: 1} | null} */
export function parseFragment(fragment) {
  const m = LINK_RE.exec(fragment);
  if (m && fromB64url(m[1])?.length === 16 && fromB64url(m[2])?.length === 16) return { version: 3, secret: m[1], commit: m[2] };
  if (V2_LINK_RE.test(fragment)) return { version: 2 };
  if (V1_LINK_RE.test(fragment)) return { version: 1 };
  return null;
}

/** From the secret's 16 decoded bytes S: room = b64url(HMAC(S, "pea room v3")), K = HMAC(S, "pea signal key v3"). */
export function deriveKeys(secret) {
  const s = fromB64url(secret);
  if (s?.length !== 16) throw new Error("a pea v3 secret is 16 bytes, base64url");
  return { room: b64url(hmac(sha256, s, enc.encode("pea room v3"))), key: hmac(sha256, s, enc.encode("pea signal key v3")) };
}

/** The bytes every envelope's mac and sig cover. */
export function signedMessage(room, kind, from, to, sid, seq, payload) {
  return enc.encode(`pea-signal-v3\n${room}\n${kind}\n${from}\n${to}\n${sid}\n${seq}\n${payload}`);
}

function equal(a, b) {
  if (typeof a !== "string" || typeof b !== "string" || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Seals what this page sends and judges what it receives, for one room.
 * A sharer (it has `secretKey`) signs everything; a receiver (it has the
 * link's `commit`) accepts offers, candidates and refusals only when signed
 * by a key whose hash is that commit. Both refuse replays: per sender, the
 * first session id seen is pinned and sequence numbers must grow.
 *
 * `open` returns {ok: true, kind, payload} or {ok: false, why, kind, claimsSharer}
 * where why is "malformed" (not a v3 envelope), "bad-mac" (altered on the way),
 * "impostor" (a link holder posing as the sharer) or "replay".
 */
export class SignalAuth {
  constructor({ secret, commit = null, secretKey = null, publicKey = null, sid = b64url(random(16)) }) {
    const { room, key } = deriveKeys(secret);
    this.room = room;
    this.key = key;
    this.commit = commit;
    this.secretKey = secretKey;
    this.pk = publicKey ? b64url(publicKey) : null;
    this.sid = sid;
    this.seq = 0;
    this.peers = new Map(); // sender peer id → {sid, seq} of the last envelope accepted from it
  }

  get isSharer() {
    return this.secretKey !== null;
  }

  mac(message) {
    return hex(hmac(sha256, this.key, message));
  }

  seal(kind, from, to, payload) {
    const seq = ++this.seq;
    const m = signedMessage(this.room, kind, from, to, this.sid, seq, payload);
    const env = { v: VERSION, kind, payload, sid: this.sid, seq, mac: this.mac(m) };
    if (this.isSharer) {
      env.pk = this.pk;
      env.sig = b64url(ed25519.sign(m, this.secretKey));
    }
    return env;
  }

  /** Does this envelope carry the key the link commits to (whatever else is wrong with it)? */
  claimsSharer(data) {
    if (!this.commit || typeof data?.pk !== "string") return false;
    const pk = fromB64url(data.pk);
    return pk?.length === 32 && commitOf(pk) === this.commit;
  }

  signedBySharer(data, m) {
    if (!this.claimsSharer(data)) return false;
    const sig = fromB64url(data.sig);
    if (sig?.length !== 64) return false;
    try {
      // Strict RFC 8032 checks (no ZIP-215 leniency): one valid signature per message and key.
      const pk = fromB64url(data.pk);
      return pk !== null && ed25519.verify(sig, m, pk, { zip215: false });
    } catch {
      return false;
    }
  }

  open(data, from, to) {
    const kind = typeof data?.kind === "string" && KIND_RE.test(data.kind) ? data.kind : "?";
    const refuse = (why) => ({ ok: false, why, kind, claimsSharer: this.claimsSharer(data) });
    if (
      !data ||
      typeof data !== "object" ||
      data.v !== VERSION ||
      kind === "?" ||
      typeof data.payload !== "string" ||
      typeof data.sid !== "string" ||
      !SID_RE.test(data.sid) ||
      !Number.isSafeInteger(data.seq) ||
      data.seq < 1 ||
      typeof from !== "string" ||
      !PEER_RE.test(from) ||
      typeof to !== "string" ||
      !PEER_RE.test(to)
    )
      return refuse("malformed");
    const m = signedMessage(this.room, kind, from, to, data.sid, data.seq, data.payload);
    if (!equal(this.mac(m), data.mac)) return refuse("bad-mac");
    if (this.isSharer ? kind === "offer" : SHARER_KINDS.has(kind) && !this.signedBySharer(data, m)) return refuse("impostor");
    const last = this.peers.get(from);
    if (last && (last.sid !== data.sid || data.seq <= last.seq)) return refuse("replay");
    this.peers.set(from, { sid: data.sid, seq: data.seq });
    return { ok: true, kind, payload: data.payload };
  }
}
