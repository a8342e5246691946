// @ts-check
// Sentences for what capabilities.js finds missing: why this browser cannot take part,
// and what to use instead.
import { formatBytes } from "./format.js";
import { h } from "./dom.js";

const WHY = {
  "no-webrtc":
    "It has no WebRTC (RTCPeerConnection), which pea needs to connect two browsers directly. It is switched off here (a privacy setting such as Firefox's media.peerconnection.enabled, a hardened profile, Tor Browser) or not built into this browser.",
  "no-datachannel": "Its WebRTC cannot open data channels, which is what carries the files between the two browsers (a privacy setting or extension is blocking them).",
  "no-random": "It cannot make secure random numbers (crypto.getRandomValues), which the secret in every share link is made from.",
};

const INSTEAD = "Use a current Firefox, Chrome, Edge or Safari with WebRTC switched on (a normal window, not a hardened or Tor profile). Both people need such a browser.";

export function unsupportedView(missing, role) {
  const title = role === "sharer" ? "This browser cannot share files with pea" : "This browser cannot receive files with pea";
  const what = role === "sharer" ? "Nothing was shared." : "Nothing was downloaded, and the sharer was not contacted.";
  return h(
    "section",
    { class: "card unsupported" },
    h("h1", {}, title),
    h("p", { class: "status bad", "data-testid": "status", "data-state": "unsupported", role: "alert" }, `${missing.map((c) => WHY[c] || c).join(" ")} ${what}`),
    h("p", { "data-testid": "instead" }, INSTEAD),
    h("p", { class: "muted" }, "Missing: ", missing.join(", ")),
  );
}

/** Why downloads are kept in memory here, and up to what size that is expected to work. */
export function memoryNotice(why, budget) {
  const limit = `Files up to about ${formatBytes(budget)} should work; larger ones can fail.`;
  if (why === "no-sw")
    return [
      `This browser window cannot stream downloads to disk (it has no service workers: Firefox private windows and some privacy settings turn them off), so each file is kept in memory until it is complete. ${limit} To stream straight to disk, open the link in a normal window.`,
    ];
  return [
    `This page is on plain HTTP, which browsers do not treat as secure: downloads are kept in memory until they are complete. ${limit} To stream straight to disk, open pea over HTTPS (`,
    h("code", {}, "pea serve --tls-cert … --tls-key …"),
    " or a reverse proxy).",
  ];
}
