#!/usr/bin/env node
// A package's `prepack`, after `tsc -b`: removes build outputs in ./dist whose source in ./src is
// gone. tsc never deletes what it emitted for a file since deleted or renamed, so a working tree
// that built an older layout would otherwise publish modules that no longer exist in the source
// (scripts/packaging-test.mjs fails on such a tarball). Run from the package folder.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const dist = join(process.cwd(), 'dist');
const src = join(process.cwd(), 'src');
const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

if (existsSync(dist)) {
  const removed = [];
  for (const file of walk(dist)) {
    const rel = relative(dist, file);
    if (!OUTPUT.test(rel)) continue;
    if (!existsSync(join(src, rel.replace(OUTPUT, '.ts')))) {
      rmSync(file);
      removed.push(rel);
    }
  }
  if (removed.length > 0) console.error(`prune-dist: removed ${removed.length} stale output(s) from dist: ${removed.join(', ')}`);
}
