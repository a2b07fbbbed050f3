// The pure parts of the Podman runtime: the SpecGenerator it builds, its state mapping, log demuxing.
// (Behaviour against Podman itself is in test/integration/podman/, on a real Podman.)
import { expect } from "chai";
import { demuxLogs, LibpodClient, LogDemuxer, LogFrameError, MAX_LOG_FRAME_BYTES, routeOf } from "../../runtime/podman/libpod.client.js";
import { mapState, PodmanRuntime, timestamped } from "../../runtime/podman/podman.runtime.js";

describe("PodmanRuntime's create spec", () => {
  const rt = new PodmanRuntime({
    device: "pi-17",
    client: new LibpodClient({ socketPath: "/nonexistent/podman.sock" }),
    extraLabels: { "io.fleet.test-run": "r1", "io.fleet.device": "spoofed" },
  });

  it("maps a service and lifecycle onto Podman's SpecGenerator", () => {
    const spec = rt.createSpec({
      deployment: "shop",
      scoreHash: "sha256:abc",
      lifecycle: { stop_signal: "SIGINT", grace_period_secs: 12 },
      service: {
        name: "web",
        image: "localhost/app:v2",
        command: ["/bin/app", "--port", "8080"],
        env: { MODE: "prod" },
        ports: [{ host_port: 8080, container_port: 80 }, { host_port: 5353, container_port: 53, protocol: "udp" }],
        volumes: [{ source: "/srv/data", target: "/data", read_only: true }, { source: "/srv/cache", target: "/cache" }],
        health: { cmd: ["CMD-SHELL", "wget -qO- localhost"], interval_secs: 5, timeout_secs: 2, retries: 4 },
      },
    });
    expect(spec).to.deep.equal({
      name: "shop.web",
      image: "localhost/app:v2",
      labels: {
        "io.fleet.test-run": "r1",
        "io.fleet.managed": "true",
        "io.fleet.device": "pi-17", // ours win over extraLabels
        "io.fleet.deployment": "shop",
        "io.fleet.service": "web",
        "io.fleet.score-hash": "sha256:abc",
      },
      stop_signal: 2,
      stop_timeout: 12,
      command: ["/bin/app", "--port", "8080"],
      env: { MODE: "prod" },
      portmappings: [
        { container_port: 80, host_port: 8080, protocol: "tcp" },
        { container_port: 53, host_port: 5353, protocol: "udp" },
      ],
      mounts: [
        { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"] },
        { destination: "/cache", type: "bind", source: "/srv/cache", options: ["rbind", "rw"] },
      ],
      healthconfig: { Test: ["CMD-SHELL", "wget -qO- localhost"], Interval: 5e9, Timeout: 2e9, StartPeriod: 0, Retries: 4 },
    });
  });

  it("leaves out what the score leaves out; a bare health command runs as CMD", () => {
    const spec = rt.createSpec({
      deployment: "d",
      scoreHash: "h",
      lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 30 },
      service: { name: "s", image: "img", health: { cmd: ["/bin/check"] } },
    });
    expect(Object.keys(spec).sort()).to.deep.equal(["healthconfig", "image", "labels", "name", "stop_signal", "stop_timeout"]);
    expect(spec.stop_signal).to.equal(15);
    expect(spec.healthconfig).to.deep.equal({ Test: ["CMD", "/bin/check"], Interval: 30e9, Timeout: 30e9, StartPeriod: 0, Retries: 3 });
  });

  it("maps Podman's states", () => {
    expect(["running", "created", "configured", "initialized", "exited", "stopped", "paused", "stopping", "removing", "Exited"].map(mapState)).to.deep.equal([
      "running", "created", "created", "created", "exited", "exited", "paused", "stopping", "unknown", "exited",
    ]);
  });

  it("demultiplexes Podman's log frames, and passes raw text through", () => {
    const frame = (kind: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = kind;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    expect(demuxLogs(Buffer.concat([frame(1, "out\n"), frame(2, "err\n")]))).to.equal("out\nerr\n");
    expect(demuxLogs(Buffer.from("plain tty text\n"))).to.equal("plain tty text\n");
  });
});

const frame = (kind: number, text: string | Buffer) => {
  const body = typeof text === "string" ? Buffer.from(text) : text;
  const head = Buffer.alloc(8);
  head[0] = kind;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
};

describe("LogDemuxer", () => {
  const stream = Buffer.concat([frame(1, "2026-12-01T10:00:00Z out\n"), frame(2, "2026-12-01T10:00:00Z err\n"), frame(1, ""), frame(1, "x".repeat(300))]);
  const expected = [
    { stream: "stdout", payload: "2026-12-01T10:00:00Z out\n" },
    { stream: "stderr", payload: "2026-12-01T10:00:00Z err\n" },
    { stream: "stdout", payload: "" },
    { stream: "stdout", payload: "x".repeat(300) },
  ];

  it("gives the same frames however the stream is chunked (every split point, and byte by byte)", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new LogDemuxer();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      d.end();
      expect(got.map((f) => ({ stream: f.stream, payload: f.payload.toString() }))).to.deep.equal(expected);
    }
    const d = new LogDemuxer();
    const got = [];
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
    expect(got).to.have.length(4);
  });

  it("refuses a header that is not stdout or stderr, naming the byte where it is", () => {
    const d = new LogDemuxer();
    const bad = Buffer.concat([frame(1, "ok\n"), Buffer.from("plain text, no frames")]);
    expect(() => d.push(bad)).to.throw(LogFrameError, /^log frame header at byte 11: expected stream 1 or 2 and three zero bytes, got 706c6169$/);
  });

  it("refuses a frame announcing more than MAX_LOG_FRAME_BYTES before buffering it, and a stream ending mid-frame", () => {
    const head = Buffer.alloc(8);
    head[0] = 1;
    head.writeUInt32BE(MAX_LOG_FRAME_BYTES + 1, 4);
    expect(() => new LogDemuxer().push(head)).to.throw(LogFrameError, /length 1048577 is over 1048576 bytes/);
    const d = new LogDemuxer();
    d.push(frame(1, "abc").subarray(0, 9));
    expect(() => d.end()).to.throw(LogFrameError, /ends inside a frame at byte 9/);
  });
});

describe("timestamped log frames", () => {
  it("reads 4.3.1's second-precision time, and nanoseconds or an offset as later versions send", () => {
    expect(timestamped(Buffer.from("2026-12-01T16:50:12Z out-1\n"))).to.deep.equal({ at: "2026-12-01T16:50:12.000Z", body: Buffer.from("out-1\n") });
    expect(timestamped(Buffer.from("2026-12-01T16:50:12.739717928Z x")).at).to.equal("2026-12-01T16:50:12.739Z");
    expect(timestamped(Buffer.from("2026-12-01T18:50:12+02:00 ")).at).to.equal("2026-12-01T16:50:12.000Z");
  });
  it("a frame without a time is an error quoting what came", () => {
    expect(() => timestamped(Buffer.from("out-1 without a time"))).to.throw(LogFrameError, 'log frame: expected an RFC 3339 time and a space, got "out-1 without a time"');
    expect(() => timestamped(Buffer.from("2026-13-45T99:00:00Z x"))).to.throw(LogFrameError);
  });
});

describe("request routes", () => {
  it("names a request by its route, ids and image names as placeholders", () => {
    expect(routeOf("/containers/abc123/stop")).to.equal("/containers/{id}/stop");
    expect(routeOf("/containers/abc123")).to.equal("/containers/{id}");
    expect(routeOf("/containers/json")).to.equal("/containers/json");
    expect(routeOf("/containers/create")).to.equal("/containers/create");
    expect(routeOf("/images/localhost/app:v1/exists")).to.equal("/images/{name}/exists");
    expect(routeOf("/events")).to.equal("/events");
  });
});
