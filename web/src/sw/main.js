// @ts-check
// The one service worker (/sw.js, scope "/"): it streams downloads to disk
// (download-sw.js), keeps the app shell for offline use (shell.js) and receives what
// other apps share to pea (share-target.js). One worker, because all three need the
// whole origin: the page, the download URLs and the share target's POST are all under
// "/", and of two workers on nested scopes only one would control each request. Each
// part answers only its own requests (disjoint paths and methods) and lets every
// other request pass.
import "../download-sw.js";
import "./shell.js";
import "./share-target.js";
