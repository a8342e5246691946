// @ts-check
// The only way views build DOM: strings always become text nodes or
// attribute values, never markup, so a file called "<img onerror=…>" is text.
// A message (i18n.js `msg(key)`) as a child or attribute stays in the person's language:
// it is put into words now and again whenever the language changes.
import { keep, Msg, msg } from "../i18n/i18n.js";

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (v instanceof Msg) {
      el.setAttribute(k, String(v));
      keep(el, k, v);
    } else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    if (c instanceof Msg) {
      const text = document.createTextNode(String(c));
      keep(text, null, c);
      el.append(text);
    } else el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** Keeps one element per key in `list`, creating, updating and removing rows in place (focus survives). */
export function syncList(list, items, key, create, update) {
  const seen = new Set();
  /** @type {Element | null} */
  let prev = null;
  for (const item of items) {
    const k = key(item);
    seen.add(k);
    let row = list.querySelector(`:scope > [data-key="${CSS.escape(k)}"]`);
    if (!row) {
      row = create(item);
      row.dataset.key = k;
    }
    update(row, item);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (row !== want) list.insertBefore(row, want);
    prev = row;
  }
  for (const row of [...list.children]) if (!seen.has(row.dataset.key)) row.remove();
}

/** A notice; `kind` "error" interrupts a screen reader (role alert), the others wait their turn. */
export function banner(kind, ...children) {
  return h("div", { class: `banner ${kind}`, role: kind === "error" ? "alert" : "note" }, ...children);
}

/**
 * Where a locked screen may pause a transfer (no wake lock), the warning goes here while
 * one runs; an empty box otherwise (nothing hidden in the page to trip over).
 */
export function wakeWarning() {
  const box = h("div", { class: "wake-warning", "data-testid": "wake-missing" });
  const warning = banner("warn", msg("wake.missing"));
  return {
    box,
    /** @param {boolean} on */
    show(on) {
      if (on !== box.contains(warning)) box.replaceChildren(...(on ? [warning] : []));
    },
  };
}
