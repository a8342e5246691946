// @ts-check
// Numbers as a person reads them: sizes, durations, a transfer's progress.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "?";
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${UNITS[i]}`;
}

export function formatDuration(s) {
  if (!Number.isFinite(s) || s < 0) return "";
  if (s < 1) return "under a second";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/**
 * A transfer's progress in one line: percent, bytes, speed, time left.
 * @param {import("../util.js").Meter} meter
 */
export function progressText(meter) {
  const pct = Math.floor(meter.fraction * 100);
  const sp = meter.speed;
  const eta = sp > 0 ? formatDuration((meter.total - meter.done) / sp) : "";
  return `${pct}% · ${formatBytes(meter.done)} of ${formatBytes(meter.total)} · ${formatBytes(sp)}/s${eta ? ` · ${eta} left` : ""}`;
}
