// @ts-check
// Getting files in: the file input, a folder input, and drag and drop
// (folders included, walked recursively with their relative paths).

export function filesFromInput(input) {
  return [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/** A one-off folder picker: not kept in the page, so the start page has exactly one input[type=file]. */
export function pickFolder(onFiles) {
  const input = document.createElement("input");
  input.type = "file";
  input.webkitdirectory = true;
  input.multiple = true;
  input.addEventListener("change", () => onFiles(filesFromInput(input)));
  input.click();
}

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\/+/, "") || file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await readEntries(reader); // returns at most ~100 entries per call
      if (!batch.length) break;
      for (const e of batch) await walk(e, out);
    }
  }
}

export async function filesFromDrop(dataTransfer) {
  const entries = [...(dataTransfer.items || [])].filter((i) => i.kind === "file").map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (!entries.length || entries.some((e) => !e)) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  for (const e of entries) await walk(e, out);
  return out;
}

/** Makes `zone` accept drops; the whole page too, so a near miss does not open the file instead. */
export function acceptDrops(zone, onFiles) {
  const over = (e) => {
    if ([...(e.dataTransfer?.types || [])].includes("Files")) {
      e.preventDefault();
      zone.classList.add("dragging");
    }
  };
  const leave = () => zone.classList.remove("dragging");
  const drop = async (e) => {
    if (!e.dataTransfer?.files?.length && !e.dataTransfer?.items?.length) return;
    e.preventDefault();
    leave();
    const files = await filesFromDrop(e.dataTransfer);
    if (files.length) onFiles(files);
  };
  document.addEventListener("dragover", over);
  document.addEventListener("dragleave", (e) => {
    if (!e.relatedTarget) leave();
  });
  document.addEventListener("drop", drop);
}
