// @ts-check
// What surrounds every view: the footer's language switcher and install button, the
// page's own words (title, tagline, footer) in the chosen language, and the notice that
// this page, opened offline from the app shell, needs the network to share.
import { keep, LOCALES, locale, msg, onLocaleChange, setLocale, t } from "../i18n/i18n.js";
import { banner, h } from "./dom.js";

/** Puts the page's fixed words into the current language and keeps them there. */
export function labelPage() {
  const title = () => {
    document.title = t("page.title");
  };
  title();
  onLocaleChange(title);
  /** @type {[string, string | null, string][]} */
  const fixed = [
    [".brand", "aria-label", "page.home"],
    [".tagline", null, "page.tagline"],
    [".foot-note", null, "page.footer"],
  ];
  for (const [sel, attr, key] of fixed) {
    const el = document.querySelector(sel);
    if (!el) continue;
    const m = msg(key);
    if (attr) el.setAttribute(attr, String(m));
    else el.textContent = String(m);
    keep(el, attr, m);
  }
}

/** The language switcher: every language in its own name; the choice is remembered. */
export function languageSwitcher() {
  const select = h(
    "select",
    { id: "language", "data-testid": "language", onchange: () => setLocale(select.value, { persist: true }) },
    Object.entries(LOCALES).map(([code, name]) => h("option", { value: code, lang: code }, name)),
  );
  const sync = () => {
    select.value = locale();
  };
  sync();
  onLocaleChange(sync);
  return h("div", { class: "language" }, h("label", { for: "language" }, msg("language.label")), select);
}

/**
 * An "Install pea" button, shown only where the browser offers installing (Chromium's
 * beforeinstallprompt); Safari and Firefox have their own menus and no event.
 */
export function installButton() {
  /** @type {any} */
  let offer = null;
  const button = h("button", { type: "button", class: "button install", hidden: true, title: msg("install.hint"), "data-testid": "install" }, msg("install.button"));
  button.addEventListener("click", async () => {
    if (!offer) return;
    const shown = offer;
    offer = null;
    button.hidden = true;
    await shown.prompt();
  });
  addEventListener("beforeinstallprompt", (e) => {
    e.preventDefault(); // our button, not the browser's mini-infobar, asks
    offer = e;
    button.hidden = false;
  });
  addEventListener("appinstalled", () => {
    offer = null;
    button.hidden = true;
  });
  return button;
}

/**
 * The "offline" notice: shown while the pea server cannot be reached (the page itself then
 * came from the app shell's cache), gone once it can. Asked of the server itself, not of
 * navigator.onLine, which is false on machines with no default route (a LAN-only network).
 */
export function offlineNotice(box) {
  const notice = banner("warn", msg("offline.notice"));
  notice.dataset.testid = "offline";
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let again;
  const check = async () => {
    clearTimeout(again);
    let up = false;
    try {
      // HEAD: no worker part answers it, so only the network can.
      await fetch("/", { method: "HEAD", cache: "no-store" });
      up = true;
    } catch {}
    box.replaceChildren(...(up ? [] : [notice]));
    if (!up) again = setTimeout(check, 10000);
  };
  check();
  addEventListener("online", check);
  addEventListener("offline", check);
}
