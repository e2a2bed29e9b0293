// Writes a .gz beside every text asset of dist/ (vorg serves it to clients that accept gzip).
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const dir = new URL("../dist", import.meta.url).pathname;
const text = /\.(js|css|html|svg|json|txt|map)$/;
function walk(d) {
  for (const name of readdirSync(d)) {
    const path = join(d, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (text.test(name)) {
      const gz = gzipSync(readFileSync(path), { level: constants.Z_BEST_COMPRESSION });
      writeFileSync(`${path}.gz`, gz);
    }
  }
}
walk(dir);
