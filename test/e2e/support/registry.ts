// A tiny OCI distribution registry for the e2e suite: serves one image (saved from the local store
// with `podman save --format oci-dir`) under any repository name and tag, over plain HTTP on a
// loopback port (except repositories under `absent/`: 404, an image no registry serves). It can hold manifest requests (a pull that stalls, to catch a deployment in
// `pulling`) and release them later. Podman is told the registry is insecure by the
// registries.conf that `registriesConf()` writes (CONTAINERS_REGISTRIES_CONF of the service).
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { join } from "node:path";

interface Manifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

export class StallingRegistry {
  private held: Array<() => void> = [];
  private holding = false;
  /** Manifest requests seen (a pull reached the registry). */
  manifestRequests = 0;
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly manifest: Manifest,
    private readonly blobDir: string,
  ) {}

  /** Serves the OCI layout in `ociDir` (its first manifest) on 127.0.0.1:`port` (0: any free port). */
  static async start(ociDir: string, port = 0): Promise<StallingRegistry> {
    const index = JSON.parse(readFileSync(join(ociDir, "index.json"), "utf8")) as { manifests: { digest: string; mediaType: string }[] };
    const m = index.manifests[0];
    if (!m) throw new Error(`${ociDir}: no manifest in index.json`);
    const blobDir = join(ociDir, "blobs", "sha256");
    const manifest = { digest: m.digest, mediaType: m.mediaType, body: readFileSync(join(blobDir, m.digest.slice("sha256:".length))) };
    let self: StallingRegistry | null = null;
    const server = http.createServer((req, res) => self!.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    self = new StallingRegistry(server, typeof addr === "object" && addr ? addr.port : port, manifest, blobDir);
    return self;
  }

  get host() {
    return `127.0.0.1:${this.port}`;
  }

  /** An image reference this registry serves (any repository, any tag). */
  ref(repo: string, tag = "v2") {
    return `${this.host}/${repo}:${tag}`;
  }

  /** From now on, manifest requests wait until `release()`. */
  hold() {
    this.holding = true;
  }

  /** Answers every held request and stops holding. */
  release() {
    this.holding = false;
    const h = this.held;
    this.held = [];
    for (const go of h) go();
  }

  get heldCount() {
    return this.held.length;
  }

  async stop() {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** A registries.conf that marks this registry insecure (plain HTTP) and searches no other. */
  static registriesConf(path: string, port: number) {
    writeFileSync(path, `# written by the e2e suite\nunqualified-search-registries = []\n\n[[registry]]\nlocation = "127.0.0.1:${port}"\ninsecure = true\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? "/", "http://x");
    const head = req.method === "HEAD";
    res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(head ? undefined : "{}");
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest) {
      this.manifestRequests++;
      // A repository named absent/... is one this registry does not serve.
      if (manifest[1]!.startsWith("absent/")) return this.notFound(res, "MANIFEST_UNKNOWN");
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(200, { "content-type": this.manifest.mediaType, "docker-content-digest": this.manifest.digest, "content-length": this.manifest.body.length });
        res.end(head ? undefined : this.manifest.body);
      };
      if (this.holding) this.held.push(answer);
      else answer();
      return;
    }
    const blob = /^\/v2\/(.+)\/blobs\/sha256:([0-9a-f]{64})$/.exec(url.pathname);
    if (blob) {
      let body: Buffer;
      try {
        body = readFileSync(join(this.blobDir, blob[2]!));
      } catch {
        return this.notFound(res, "BLOB_UNKNOWN");
      }
      res.writeHead(200, { "content-type": "application/octet-stream", "docker-content-digest": `sha256:${blob[2]}`, "content-length": body.length });
      return res.end(head ? undefined : body);
    }
    this.notFound(res, "NAME_UNKNOWN");
  }

  private notFound(res: http.ServerResponse, code: string) {
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors: [{ code, message: code.toLowerCase().replace("_", " ") }] }));
  }
}
