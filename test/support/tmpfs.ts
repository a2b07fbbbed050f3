// A real, small file system that fills up: a tmpfs mounted for one test (root only, as Podman is
// here), a filler file that takes every free byte, and the unmount. What a device with a full SD
// card sees: ENOSPC from the kernel, not from a mock.
import { execFile } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const run = (cmd: string, args: string[]) =>
  new Promise<void>((resolve, reject) => execFile(cmd, args, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(" ")}: ${stderr || err.message}`)) : resolve())));

export interface SmallDisk {
  /** The mount point. */
  dir: string;
  /** Takes every free byte (a file of the size left, then single bytes until ENOSPC). */
  fill(): void;
  /** Deletes the filler: the space is back. */
  free(): void;
  /** Files under the mount point whose name says a write left them (`*.tmp`), relative paths. */
  tempFiles(): string[];
  /** Unmounts and removes the mount point (idempotent). */
  unmount(): Promise<void>;
}

export async function mountSmallDisk(sizeKb: number): Promise<SmallDisk> {
  const dir = mkdtempSync(join(tmpdir(), "fleet-small-disk-"));
  await run("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0700`, "tmpfs", dir]);
  const filler = join(dir, "filler");
  let mounted = true;
  return {
    dir,
    fill() {
      const fd = openSync(filler, "a");
      try {
        for (const chunk of [1 << 20, 1 << 16, 1 << 12, 1]) {
          const buf = Buffer.alloc(chunk, 0x55);
          for (;;) {
            try {
              writeSync(fd, buf);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
              break;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    tempFiles() {
      const out: string[] = [];
      const walk = (d: string) => {
        for (const f of readdirSync(d)) {
          const p = join(d, f);
          if (statSync(p).isDirectory()) walk(p);
          else if (f.endsWith(".tmp")) out.push(relative(dir, p));
        }
      };
      walk(dir);
      return out;
    },
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await run("umount", ["-l", dir]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
