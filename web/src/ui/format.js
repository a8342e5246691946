// @ts-check
// Numbers as a person reads them, in their language (Intl): sizes, speeds, durations,
// a transfer's progress. Sizes are SI (1 kB = 1000 B): Intl has units for those, in
// every locale, and none for KiB/MiB.
import { locale, numberFormat, t } from "../i18n/i18n.js";

const UNITS = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];

/** @param {number} n @param {string} [loc] */
export function formatBytes(n, loc = locale()) {
  return scaled(n, "", loc);
}

/** Bytes per second, as "1.5 MB/s" in the locale's words. @param {number} n @param {string} [loc] */
export function formatSpeed(n, loc = locale()) {
  return scaled(n, "-per-second", loc);
}

function scaled(n, per, loc) {
  if (!Number.isFinite(n)) return "?";
  let i = 0;
  while (Math.abs(n) >= 1000 && i < UNITS.length - 1) {
    n /= 1000;
    i++;
  }
  const digits = i === 0 ? 0 : n < 10 ? 1 : 0;
  return numberFormat(loc, { style: "unit", unit: UNITS[i] + per, unitDisplay: "short", minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
}

/** @param {number} s seconds @param {string} [loc] */
export function formatDuration(s, loc = locale()) {
  if (!Number.isFinite(s) || s < 0) return "";
  if (s < 1) return t("format.under-a-second");
  const unit = (/** @type {string} */ u, /** @type {number} */ v, digits = 0) => numberFormat(loc, { style: "unit", unit: u, unitDisplay: "short", maximumFractionDigits: digits }).format(v);
  if (s < 90) return unit("second", Math.round(s));
  if (s < 5400) return unit("minute", Math.round(s / 60));
  return unit("hour", s / 3600, 1);
}

/**
 * A transfer's progress in one line: percent, bytes, speed, time left.
 * @param {import("../util.js").Meter} meter
 */
export function progressText(meter) {
  const percent = numberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(Math.floor(meter.fraction * 100) / 100);
  const sp = meter.speed;
  const eta = sp > 0 ? formatDuration((meter.total - meter.done) / sp) : "";
  const p = { percent, done: formatBytes(meter.done), total: formatBytes(meter.total), speed: formatSpeed(sp), eta };
  return t(eta ? "format.progress-eta" : "format.progress", p);
}
