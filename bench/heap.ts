// Heap snapshots (V8's .heapsnapshot format) summarised for the footprint bench: self size and count
// per kind of node (an object by its constructor, a closure by its function's name, strings, code,
// arrays), and the difference between two snapshots, largest growth first.
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export type HeapSummary = Map<string, { count: number; bytes: number }>;

export function summariseHeap(file: string): HeapSummary {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")];
  const out: HeapSummary = new Map();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const name = s.strings[s.nodes[i + iName]!] ?? "";
    const key =
      type === "object" || type === "closure" || type === "native"
        ? `${type} ${name.length > 60 ? `${name.slice(0, 57)}…` : name || "(anonymous)"}`
        : type === "string" || type === "concatenated string" || type === "sliced string"
          ? "strings"
          : `(${type})`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + iSize]!;
    out.set(key, e);
  }
  return out;
}

/** Rows of `after − before`, by growth in bytes, the largest `top`. */
export function heapGrowth(before: HeapSummary, after: HeapSummary, top = 15): Array<{ key: string; count: number; bytes: number }> {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys]
    .map((key) => ({ key, count: (after.get(key)?.count ?? 0) - (before.get(key)?.count ?? 0), bytes: (after.get(key)?.bytes ?? 0) - (before.get(key)?.bytes ?? 0) }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top);
}

export const totalBytes = (h: HeapSummary) => [...h.values()].reduce((a, e) => a + e.bytes, 0);
