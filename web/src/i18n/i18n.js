// @ts-check
// Every sentence a person reads comes from a catalogue in src/locales/ (en.json is the
// one list of keys; docs/i18n.md says how to add one). Placeholders are {name}; a
// message that depends on a number is an object keyed by the CLDR plural category
// Intl.PluralRules gives for its `count` (no plural rules of our own). English is
// bundled as the fallback; the others are fetched from /locales/<code>.json.
import en from "../locales/en.json" with { type: "json" };

/** The languages on offer, each named in itself (what the switcher lists). */
export const LOCALES = Object.freeze({ en: "English", de: "Deutsch", fr: "Français", es: "Español", pt: "Português", nl: "Nederlands", ar: "العربية" });
const RTL = new Set(["ar"]);
const STORE_KEY = "pea.locale";

/** @typedef {Record<string, string | Record<string, string>>} Catalogue */
/** @type {Catalogue} */
const ENGLISH = en;

let current = "en";
/** @type {Catalogue} */
let messages = ENGLISH;
/** @type {Set<() => void>} */
const listeners = new Set();

/** A message not yet put into words: what `h()` takes to keep an element in the current language. */
export class Msg {
  /** @param {string} key @param {Record<string, unknown>} [params] */
  constructor(key, params = {}) {
    this.key = key;
    this.params = params;
  }
  toString() {
    return t(this.key, this.params);
  }
}

/** @param {string} key @param {Record<string, unknown>} [params] */
export const msg = (key, params) => new Msg(key, params);

/** @type {Map<string, Intl.NumberFormat>} */
const numberFormats = new Map();
/** @type {Map<string, Intl.PluralRules>} */
const pluralRules = new Map();

/**
 * An Intl.NumberFormat, made once per locale and options: making one costs far more than
 * using it, and a running transfer's line is written again several times a second. The
 * options used are a small fixed set, so the cache stays small.
 * @param {string} locale @param {Intl.NumberFormatOptions} [options]
 */
export function numberFormat(locale, options) {
  const key = `${locale} ${options ? JSON.stringify(options) : ""}`;
  let f = numberFormats.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, options);
    numberFormats.set(key, f);
  }
  return f;
}

/** @param {string} locale */
function plurals(locale) {
  let p = pluralRules.get(locale);
  if (!p) {
    p = new Intl.PluralRules(locale);
    pluralRules.set(locale, p);
  }
  return p;
}

/**
 * The message `key` of `catalogue` (else English) in `locale`, placeholders filled. Numbers
 * are written the locale's way; a plural message picks its form from `params.count`.
 * @param {Catalogue} catalogue @param {string} locale @param {string} key @param {Record<string, unknown>} [params]
 */
export function translate(catalogue, locale, key, params = {}) {
  let m = catalogue[key] ?? ENGLISH[key];
  if (m === undefined) return key;
  if (typeof m === "object") {
    const n = Number(params.count);
    const forms = /** @type {Record<string, string>} */ (m);
    m = forms[plurals(locale).select(Number.isFinite(n) ? n : 0)] ?? forms.other;
  }
  return String(m).replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const v = params[name];
    return typeof v === "number" ? numberFormat(locale).format(v) : String(v);
  });
}

/** @param {string} key @param {Record<string, unknown>} [params] */
export function t(key, params) {
  return translate(messages, current, key, params);
}

export function locale() {
  return current;
}

function stored() {
  try {
    return localStorage.getItem(STORE_KEY);
  } catch {
    return null; // storage switched off: the browser's languages decide
  }
}

/**
 * The language to speak: the one chosen in the switcher, else the first of the browser's
 * languages pea has (by its primary subtag: "pt-BR" gets "pt"), else English.
 * @param {readonly string[]} [preferred] @param {string | null} [chosen]
 */
export function pickLocale(preferred = globalThis.navigator?.languages ?? [], chosen = stored()) {
  if (chosen && Object.hasOwn(LOCALES, chosen)) return chosen;
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (Object.hasOwn(LOCALES, base)) return base;
  }
  return "en";
}

/** @param {string} code @returns {Promise<Catalogue>} */
async function load(code) {
  if (code === "en") return ENGLISH;
  const r = await fetch(`/locales/${code}.json`);
  if (!r.ok) throw new Error(`catalogue ${code}: HTTP ${r.status}`);
  const body = await r.json();
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new Error(`catalogue ${code}: not an object`);
  return body;
}

/**
 * Speak `code` from now on: loads its catalogue, sets <html lang dir>, puts every live
 * message and view into it. `persist`: remember it as the person's choice.
 * @param {string} code @param {{persist?: boolean}} [opts]
 */
export async function setLocale(code, { persist = false } = {}) {
  if (!Object.hasOwn(LOCALES, code)) code = "en";
  try {
    messages = await load(code);
    current = code;
  } catch (err) {
    console.warn("pea: could not load a catalogue, English instead", err);
    messages = ENGLISH;
    current = "en";
  }
  if (persist)
    try {
      localStorage.setItem(STORE_KEY, current);
    } catch {}
  const root = document.documentElement;
  root.lang = current;
  root.dir = RTL.has(current) ? "rtl" : "ltr";
  relabel();
  for (const f of listeners) f();
}

/** Call `f` after every change of language (views re-render their changing text). */
export function onLocaleChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** @type {Set<{ref: WeakRef<Node>, attr: string | null, m: Msg}>} */
const live = new Set();

/** Keeps `node` (its text, or its attribute `attr`) saying `m` in the current language. */
export function keep(node, attr, m) {
  live.add({ ref: new WeakRef(node), attr, m });
}

function relabel() {
  for (const entry of live) {
    const node = entry.ref.deref();
    if (!node) live.delete(entry);
    else if (entry.attr) /** @type {Element} */ (node).setAttribute(entry.attr, String(entry.m));
    else node.textContent = String(entry.m);
  }
}
