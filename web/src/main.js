// Entry point: a URL with a secret in its fragment receives; anything else
// is the start page, which becomes a share as soon as something is picked.
import { SECRET_RE, newSecret } from "./auth.js";
import { setupDownloads } from "./download.js";
import { Receiver } from "./receiver.js";
import { Room } from "./room.js";
import { Sharer } from "./sharer.js";
import { h } from "./ui/dom.js";
import { acceptDrops, filesFromInput } from "./ui/pickers.js";
import { receiveView } from "./ui/receive-view.js";
import { shareView, startView } from "./ui/share-view.js";

const app = document.getElementById("app");

function show(view) {
  app.replaceChildren(view);
}

function startPage() {
  const input = h("input", { type: "file", multiple: true, id: "pick-files", class: "visually-hidden" });
  let sharing = null;
  const begin = () => {
    sharing ??= (async () => {
      const secret = newSecret();
      const room = await Room.open(secret);
      const sharer = new Sharer(room);
      const link = `${location.origin}/#${secret}`;
      show(shareView({ sharer, link, input, onFiles, onNote }));
      room.start();
      addEventListener("beforeunload", (e) => {
        if ([...sharer.receivers.values()].some((r) => r.state === "connected")) e.preventDefault();
      });
      return sharer;
    })();
    return sharing;
  };
  const onFiles = async (entries) => (await begin()).addFiles(entries);
  const onNote = async (text) => (await begin()).addNote(text);
  input.addEventListener("change", () => {
    const entries = filesFromInput(input);
    input.value = ""; // picking the same file again still fires "change"
    if (entries.length) onFiles(entries);
  });
  acceptDrops(document.body, onFiles);
  show(startView({ input, onFiles, onNote }));
}

async function receivePage(secret) {
  performance.mark("pea:start");
  const mode = window.isSecureContext && "serviceWorker" in navigator ? "stream" : "memory";
  const room = await Room.open(secret);
  performance.mark("pea:keys");
  const receiver = new Receiver(room);
  // The service worker starts once the sharer is reached: starting it earlier competes
  // with connecting, and the file list is what a person waits for.
  const later = () => setupDownloads();
  receiver.addEventListener("update", () => receiver.files.size && later(), { once: false });
  setTimeout(later, 3000);
  show(receiveView({ receiver, mode }));
  room.start();
}

addEventListener("hashchange", () => location.reload());
const fragment = location.hash.slice(1);
if (fragment && SECRET_RE.test(fragment)) receivePage(fragment);
else if (fragment) {
  show(h("section", { class: "card" }, h("h1", {}, "This link is incomplete"), h("p", { "data-testid": "status" }, "The part after # is not a valid pea secret. Ask for the link again, or "), h("a", { href: "/" }, "share your own files")));
} else startPage();
