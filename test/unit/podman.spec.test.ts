// The pure parts of the Podman runtime: the SpecGenerator it builds, its state mapping, log demuxing.
// (Behaviour against Podman itself is in test/integration/podman/, on a real Podman.)
import { expect } from "chai";
import { demuxLogs, LibpodClient } from "../../runtime/podman/libpod.client.js";
import { mapState, PodmanRuntime } from "../../runtime/podman/podman.runtime.js";

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
