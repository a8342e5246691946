// Runs web/src/auth.js on the test vectors of docs/transfer-protocol.md and on the
// recipient rules, and prints what it computed as one JSON object for
// tests/unit/test_transfer_vectors.py to compare. Usage: node auth_vectors.mjs <vectors.json>
import { readFileSync } from "node:fs";
import { SignalAuth, commitOf, deriveKeys, fragmentOf, hex, newShare, parseFragment } from "../../web/src/auth.js";

const v = JSON.parse(readFileSync(process.argv[2], "utf8"));
const seed = Uint8Array.from(Buffer.from(v.ed25519_seed_hex, "hex"));
const share = newShare(seed);
const { room, key } = deriveKeys(v.secret);
const sharerEnv = JSON.parse(v.sharer_envelope);
const receiverEnv = JSON.parse(v.receiver_envelope);
const S = v.sharer_peer;
const R = v.receiver_peer;
const link = { secret: v.secret, commit: v.commit };
const out = {};

out.pk_hex = hex(share.publicKey);
out.commit = commitOf(share.publicKey);
out.fragment = fragmentOf(v.secret, out.commit);
out.parsed = parseFragment(v.fragment);
out.room = room;
out.K_hex = hex(key);

// Sealing with the vectors' session ids and counters gives the envelopes byte for byte.
const sharer = new SignalAuth({ ...link, secretKey: seed, publicKey: share.publicKey, sid: sharerEnv.sid });
sharer.seq = sharerEnv.seq - 1;
out.sharer_envelope = JSON.stringify(sharer.seal(sharerEnv.kind, S, R, sharerEnv.payload));
const receiver = new SignalAuth({ ...link, sid: receiverEnv.sid });
receiver.seq = receiverEnv.seq - 1;
out.receiver_envelope = JSON.stringify(receiver.seal(receiverEnv.kind, R, S, receiverEnv.payload));

// The recipient rules, each on a fresh recipient.
const rx = () => new SignalAuth({ ...link });
const tx = () => new SignalAuth({ ...link, secretKey: seed, publicKey: share.publicKey });
const why = (r) => (r.ok ? "ok" : r.why);
const rules = {};
rules.receiver_accepts_sharer_offer = why(rx().open(sharerEnv, S, R));
rules.sharer_accepts_receiver_hello = why(tx().open(receiverEnv, R, S));
{
  const r = rx();
  r.open(sharerEnv, S, R);
  rules.replayed_offer = why(r.open(sharerEnv, S, R));
  const c8 = sharer.seal("candidate", S, R, "{}"); // seq 8
  const c9 = sharer.seal("candidate", S, R, "{}"); // seq 9
  rules.later_candidate = why(r.open(c9, S, R));
  rules.reordered_candidate = why(r.open(c8, S, R));
  const other = new SignalAuth({ ...link, secretKey: seed, publicKey: share.publicKey, sid: "AAAAAAAAAAAAAAAAAAAAAA" });
  other.seq = 100;
  rules.other_sid_same_peer = why(r.open(other.seal("candidate", S, R, "{}"), S, R));
}
rules.moved_to_other_recipient = why(rx().open(sharerEnv, S, "someoneElse12345"));
rules.altered_payload = why(rx().open({ ...sharerEnv, payload: "v=1" }, S, R));
rules.version_1 = why(rx().open({ ...sharerEnv, v: 1 }, S, R));
rules.version_2 = why(rx().open({ ...sharerEnv, v: 2 }, S, R));
rules.no_seq = why(rx().open({ ...sharerEnv, seq: undefined }, S, R));
// A link holder: it knows K, so its MAC is good, but it cannot sign with the committed key.
const impostorShare = newShare(new Uint8Array(32).fill(7));
const impostor = new SignalAuth({ ...link, secretKey: impostorShare.secretKey, publicKey: impostorShare.publicKey });
rules.impostor_offer = why(rx().open(impostor.seal("offer", "impostorPeer0001", R, "v=0"), "impostorPeer0001", R));
rules.impostor_refuse = why(rx().open(impostor.seal("refuse", "impostorPeer0001", R, "x"), "impostorPeer0001", R));
const unsigned = new SignalAuth({ ...link });
rules.unsigned_offer = why(rx().open(unsigned.seal("offer", "impostorPeer0001", R, "v=0"), "impostorPeer0001", R));
rules.unsigned_hello_to_receiver = why(rx().open(unsigned.seal("hello", "impostorPeer0001", R, "receiver"), "impostorPeer0001", R));
rules.stolen_pk_and_sig = why(rx().open({ ...unsigned.seal("offer", "impostorPeer0001", R, "v=0"), pk: sharerEnv.pk, sig: sharerEnv.sig }, "impostorPeer0001", R));
rules.offer_to_sharer = why(tx().open(impostor.seal("offer", "impostorPeer0001", S, "v=0"), "impostorPeer0001", S));
rules.claims_sharer_when_altered = rx().open({ ...sharerEnv, payload: "v=1" }, S, R).claimsSharer;
rules.impostor_does_not_claim_sharer = rx().open({ ...impostor.seal("offer", "impostorPeer0001", R, "v=0"), mac: "00" }, "impostorPeer0001", R).claimsSharer;
out.rules = rules;

out.fragments = Object.fromEntries(
  [v.fragment, v.secret, `2.${v.secret}.${v.commit}`, `3.${v.secret}`, `3.${v.secret}.${v.commit}x`, `3.${v.secret.slice(0, 21)}B.${v.commit}`, "3.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"].map((f) => [f, parseFragment(f)]),
);
console.log(JSON.stringify(out));
