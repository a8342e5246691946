// Runs web/src/transfer/blocks.js on the block vectors of docs/transfer-protocol.md and
// prints what it computed as one JSON object for tests/unit/test_transfer_vectors.py.
// Usage: node blocks_vectors.mjs <vectors.json>
import { readFileSync } from "node:fs";
import { BLOCK, blockHash, blockMessage, endMessage, getMessage, hashFile, metaFits, metaMessage, validFrom } from "../../web/src/transfer/blocks.js";

const v = JSON.parse(readFileSync(process.argv[2], "utf8"));
const size = Number(v.file_size);
const file = new Uint8Array(size);
for (let j = 0; j < size; j++) file[j] = j % 251;
const read = async (start, end) => file.slice(start, end);
const out = { block_size: BLOCK };
const h = await hashFile(read, size);
out.file_sha256 = h.sha256;
out.blocks = [0, 1, 2].map((i) => blockHash(h.blocks, i));
// Read in pieces of one block: the same hashes whatever the read size.
out.same_with_small_reads = (await hashFile(read, size, { readSize: BLOCK })).sha256 === h.sha256;
out.empty_sha256 = (await hashFile(read, 0)).sha256;
out.get_resume = JSON.stringify(getMessage("3", BLOCK));
out.meta_resume = JSON.stringify(metaMessage(size, h.sha256, BLOCK));
out.block_1_message = JSON.stringify(blockMessage(1, blockHash(h.blocks, 1)));
out.block_2_message = JSON.stringify(blockMessage(2, blockHash(h.blocks, 2)));
out.end_message = JSON.stringify(endMessage(size, h.sha256));
out.valid_from = Object.fromEntries([0, BLOCK, 2 * BLOCK, size, 3 * BLOCK, -BLOCK, 1, 1.5 * BLOCK].map((f) => [String(f), validFrom(f, size)]));
out.valid_from_at_end = validFrom(2 * BLOCK, 2 * BLOCK);
out.meta_fits = metaFits(JSON.parse(out.meta_resume), size, BLOCK);
out.meta_other_from = metaFits(JSON.parse(out.meta_resume), size, 0);
out.meta_other_block = metaFits({ ...JSON.parse(out.meta_resume), block: 4 * BLOCK }, size, BLOCK);
console.log(JSON.stringify(out));
