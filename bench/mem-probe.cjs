// Benchmarks only: preloaded into a process under measurement (NODE_OPTIONS="--require
// <this file>", with VIRTOPS_MEM_PROBE=<file>). On SIGUSR2 it writes where the process's
// memory is, as JSON, to that file: process.memoryUsage() (RSS, V8 heap total/used,
// external, array buffers), V8's heap statistics and its spaces (used vs committed: the
// headroom V8 keeps), and /proc/self/smaps_rollup (anonymous vs file-backed RSS). When the
// file `<file>.gc` exists (and with --expose-gc) it collects garbage first, so "used" is the
// live heap. When `<file>.snap` exists, a heap snapshot is written to the path it holds.
// CommonJS because --require takes nothing else.
'use strict';
const { existsSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const v8 = require('node:v8');

const out = process.env.VIRTOPS_MEM_PROBE;
if (out) {
  process.on('SIGUSR2', () => {
    if (existsSync(`${out}.gc`) && typeof globalThis.gc === 'function') globalThis.gc();
    // `<file>.snap` holding a path: a heap snapshot is written there too (for a look at what is live).
    if (existsSync(`${out}.snap`)) v8.writeHeapSnapshot(readFileSync(`${out}.snap`, 'utf8').trim());
    const smaps = {};
    try {
      for (const line of readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
        const m = /^(\w+):\s+(\d+) kB/.exec(line);
        if (m) smaps[m[1]] = Number(m[2]) * 1024;
      }
    } catch {
      // not Linux: smaps stays empty
    }
    // Anonymous memory by mapping: the brk heap (glibc's main arena), glibc's per-thread arenas
    // (mappings inside 64 MiB-reserved regions), and the rest (V8's heap pages, thread stacks).
    const anon = { brkHeap: 0, mallocArenas: 0, other: 0, otherLargest: [] };
    try {
      let cur;
      const flush = () => {
        if (!cur || !cur.anon) return;
        if (cur.path === '[heap]') anon.brkHeap += cur.rss;
        else if (cur.arena) anon.mallocArenas += cur.rss;
        else {
          anon.other += cur.rss;
          anon.otherLargest.push(cur.rss);
        }
      };
      let prevEnd = 0;
      let prevWasArena = false;
      for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
        const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
        if (head) {
          flush();
          const start = parseInt(head[1], 16);
          const end = parseInt(head[2], 16);
          const path = head[4].trim();
          // glibc's non-main arenas are 64 MiB-aligned regions (HEAP_MAX_SIZE), mapped rw then PROT_NONE.
          const arena = path === '' && (start % (64 * 2 ** 20) === 0 || (prevWasArena && start === prevEnd));
          cur = { path, anon: path === '' || path === '[heap]', arena, rss: 0 };
          prevWasArena = arena;
          prevEnd = end;
          continue;
        }
        const rss = /^Rss:\s+(\d+) kB/.exec(line);
        if (rss && cur) cur.rss = Number(rss[1]) * 1024;
      }
      flush();
      anon.otherLargest = anon.otherLargest.sort((a, b) => b - a).slice(0, 5);
    } catch {
      // not Linux
    }
    const report = {
      anon,
      at: new Date().toISOString(),
      memoryUsage: process.memoryUsage(),
      heap: v8.getHeapStatistics(),
      spaces: v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, size: s.space_size, used: s.space_used_size, available: s.space_available_size, physical: s.physical_space_size })),
      smaps,
      resourceUsage: process.resourceUsage(),
    };
    writeFileSync(`${out}.tmp`, JSON.stringify(report));
    renameSync(`${out}.tmp`, out);
  });
}
