// @ts-check
// Names and types from the sharer's manifest are hostile input. This module is
// the one place that turns them into (a) file names and zip entry names that
// cannot escape the download folder or pass for something else on any common
// system, (b) text that shows every invisible or direction-changing character,
// and (c) a MIME type that is safe to put in a header.
// Pure functions, no DOM: the page, the service worker and `node --test` use them.

// Characters that change how the text around them is displayed without being
// visible: bidi embeddings, overrides, isolates and marks; zero-width and other
// invisible format characters; Hangul fillers (render as blank); tag characters
// (invisible ASCII look-alikes). Variation selectors are left alone: emoji need them.
const INVISIBLE_CLASS = "\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u200B-\\u200F\\u2028-\\u202E\\u2060-\\u206F\\u3164\\uFEFF\\uFFA0\\uFFF9-\\uFFFB\\u{E0000}-\\u{E007F}";
// C0 controls, DEL and C1 controls.
const CONTROL_CLASS = "\\u0000-\\u001F\\u007F-\\u009F";
// A UTF-16 surrogate without its other half (with "u", a surrogate range matches only
// those): not a character, and encodeURIComponent throws on it.
const LONE_SURROGATE = /[\uD800-\uDFFF]/gu;

const HIDDEN = new RegExp(`[${INVISIBLE_CLASS}${CONTROL_CLASS}\\uD800-\\uDFFF]`, "gu");
const INVISIBLE = new RegExp(`[${INVISIBLE_CLASS}]`, "gu");
// Between two emoji a zero-width joiner is part of one picture (👨‍👩‍👧), not a trick.
// biome-ignore lint/suspicious/noMisleadingCharacterClass: one code point at a time is what is tested (the skin-tone modifiers on their own).
const PICTURE = /^[\p{Extended_Pictographic}\u{1F3FB}-\u{1F3FF}\uFE0F]$/u;

function joinsEmoji(c, at, s) {
  if (c !== "\u200D") return false;
  const prev = s.charCodeAt(at - 1);
  const trail = prev >= 0xdc00 && prev <= 0xdfff && at >= 2;
  const before = String.fromCodePoint((trail ? s.codePointAt(at - 2) : s.codePointAt(at - 1)) ?? 0);
  const after = String.fromCodePoint(s.codePointAt(at + 1) ?? 0);
  return PICTURE.test(before) && PICTURE.test(after);
}
const CONTROL = new RegExp(`[${CONTROL_CLASS}]`, "g");

/** Longest name segment, in UTF-8 bytes: ext4 and most others allow 255; room is left for " (12)". */
export const MAX_SEGMENT_BYTES = 200;
/** Longest zip entry name, in UTF-8 bytes (Windows' classic MAX_PATH is 260 characters, extractors add the folder). */
export const MAX_PATH_BYTES = 1000;
const MAX_SEGMENTS = 32;

const RESERVED = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])$/i;

function codePoint(c) {
  return `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`;
}

/**
 * A name or path as a person should see it: every control, invisible or
 * direction-changing character is shown as ⟨U+XXXX⟩ instead of acting.
 * `hidden` says whether there was any, so the view can warn.
 */
export function visible(text) {
  let hidden = false;
  const out = String(text).replace(HIDDEN, (c, at, s) => {
    if (joinsEmoji(c, at, s)) return c;
    hidden = true;
    return codePoint(c);
  });
  return { text: out, hidden };
}

/** Does `text` contain anything `visible` would reveal? */
export function hasHidden(text) {
  return visible(text).hidden;
}

function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/** Cut `s` to at most `max` UTF-8 bytes, on a code point boundary. */
function cutBytes(s, max) {
  let out = "";
  let n = 0;
  for (const c of s) {
    const len = utf8Length(c);
    if (n + len > max) break;
    out += c;
    n += len;
  }
  return out;
}

function splitExt(name) {
  const dot = name.lastIndexOf(".");
  // ".bashrc" has no extension; an "extension" longer than 16 is just part of the name.
  if (dot <= 0 || name.length - dot > 16) return [name, ""];
  return [name.slice(0, dot), name.slice(dot)];
}

/** Shorten to MAX_SEGMENT_BYTES, keeping the extension, which is what a person recognises a file by. */
function bound(name, max = MAX_SEGMENT_BYTES) {
  if (utf8Length(name) <= max) return name;
  const [stem, ext] = splitExt(name);
  const keep = utf8Length(ext) < max / 2 ? ext : "";
  return cutBytes(stem, max - utf8Length(keep)) + keep;
}

/**
 * One path segment made safe on Linux, macOS and Windows, or "" when nothing
 * is left (".", ".." and empty segments are nothing).
 */
export function safeSegment(raw) {
  let s = String(raw).replace(LONE_SURROGATE, "\uFFFD");
  s = s.replace(INVISIBLE, (c, at, all) => (joinsEmoji(c, at, all) ? c : ""));
  s = s.replace(CONTROL, "_");
  // ":" makes a drive ("C:") or an NTFS stream ("a.txt:evil"); slashes never survive inside a segment.
  s = s.replace(/[:/\\]/g, "_");
  s = s.trim();
  if (s === "" || /^\.+$/.test(s)) return "";
  // Windows drops trailing dots and spaces ("evil.exe ." is "evil.exe" there).
  s = s.replace(/[. ]+$/, "");
  if (s === "") return "";
  const [stem] = s.split(".");
  if (RESERVED.test(stem.trim())) s = `_${s}`;
  return bound(s);
}

/** A file name for a single download: a base name, never a path. */
export function safeFileName(name, fallback = "download") {
  return safeSegment(String(name).replace(/[/\\]/g, "_")) || fallback;
}

/**
 * A relative path for a zip entry: "/" separated, backslashes treated as
 * separators, no absolute path, drive, "..", "." or empty segment, bounded.
 */
export function safeZipPath(path, fallback = "file") {
  let segs = String(path)
    .split(/[/\\]+/)
    .map(safeSegment)
    .filter(Boolean);
  if (!segs.length) return safeSegment(fallback) || "file";
  if (segs.length > MAX_SEGMENTS) segs = [...segs.slice(0, MAX_SEGMENTS - 1), segs[segs.length - 1]];
  // Too long overall: drop folders from the top, the file name itself stays.
  while (segs.length > 1 && utf8Length(segs.join("/")) > MAX_PATH_BYTES) segs.shift();
  return segs.join("/");
}

function numbered(name, n) {
  const [stem, ext] = splitExt(name);
  return `${stem} (${n})${ext}`;
}

/**
 * Hands out zip entry names that are unique within one zip, compared without
 * case (Windows and macOS folders are case-insensitive) and never equal to a
 * folder of another entry: "a.txt", then "a (2).txt".
 */
export class ZipNames {
  constructor() {
    this.files = new Set();
    this.dirs = new Set();
  }

  take(path) {
    const segs = safeZipPath(path).split("/");
    const base = segs.pop();
    const dirs = [];
    for (const seg of segs) {
      let d = seg;
      for (let n = 2; this.files.has([...dirs, d].join("/").toLowerCase()); n++) d = `${seg} (${n})`;
      dirs.push(d);
    }
    const at = (b) => [...dirs, b].join("/");
    let name = base;
    for (let n = 2; this.files.has(at(name).toLowerCase()) || this.dirs.has(at(name).toLowerCase()); n++) name = numbered(base, n);
    for (let i = 1; i <= dirs.length; i++) this.dirs.add(dirs.slice(0, i).join("/").toLowerCase());
    this.files.add(at(name).toLowerCase());
    return at(name);
  }
}

// RFC 9110 token characters, lowercase only after normalising; no parameters at all.
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
export const FALLBACK_MIME = "application/octet-stream";

/** A `type/subtype` safe for a Content-Type header, else application/octet-stream. */
export function safeMime(type) {
  if (typeof type !== "string") return FALLBACK_MIME;
  const t = type.toLowerCase();
  return MIME.test(t) ? t : FALLBACK_MIME;
}

/** RFC 6266 with an RFC 5987 `filename*`; `name` is a safe file name already, so no CR, LF or quote is left to end the header. */
function disposition(name) {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const utf8 = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

/**
 * The headers of a download response: name and type made safe again, whoever asked.
 * @param {{name: string, mime: string, size?: number}} download
 */
export function downloadHeaders({ name, mime, size }) {
  const headers = {
    "Content-Type": safeMime(mime),
    "Content-Disposition": disposition(safeFileName(name)),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
  };
  if (typeof size === "number" && Number.isSafeInteger(size) && size >= 0) headers["Content-Length"] = String(size);
  return headers;
}
