import { expect } from "chai";
import type * as t from "io-ts";
import { canonicalHash, canonicalJson } from "../../contracts/canonical-json.js";
import { decode, decodeJson, decodeOrThrow, DecodeError } from "../../contracts/decode.js";
import { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../../contracts/device-info.codec.js";
import { Heartbeat } from "../../contracts/heartbeat.codec.js";
import { JournalEvent } from "../../contracts/journal-event.codec.js";
import { containerName, deviceOrDeploymentNameProblem, isDeviceId, isServiceName, serviceNameProblem } from "../../contracts/names.js";
import { ImageRef, ReconcileScore, resolveLifecycle } from "../../contracts/score.codec.js";

// ---- the docs/design.md examples -------------------------------------------------------------------

const SERVICE = {
  name: "web",
  image: "localhost/app:v2",
  command: ["/bin/app", "--port", "8080"],
  env: { MODE: "prod" },
  ports: [{ host_port: 8080, container_port: 8080, protocol: "tcp" }],
  volumes: [{ source: "/srv/data", target: "/data", read_only: false }],
  health: { cmd: ["CMD-SHELL", "wget -qO- localhost:8080"], interval_secs: 5, timeout_secs: 2, retries: 3, start_period_secs: 0 },
};
const SCORE = { type: "PodmanV0", data: { services: [SERVICE], lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 30 } } };
const STATE = {
  device: "pi-17",
  deployment: "web",
  phase: "Running",
  state: "running",
  score_hash: `sha256:${"ab".repeat(32)}`,
  desired_revision: 12,
  container_ids: { web: "1f8a" },
  last_error: null,
  last_event_seq: 42,
  last_event_at: "2026-11-28T13:00:00.000Z",
};
const EVENT = {
  v: 1,
  device: "pi-17",
  deployment: "web",
  n: 7,
  at: "2026-11-28T13:00:00.000Z",
  event: { type: "xstate.done.actor.stopOld", output: { stopped: ["1f8a"] } },
  from: "stoppingOld",
  to: "startingNew",
};
const EVENT_V2 = {
  ...EVENT,
  v: 2,
  event: { type: "stop.done", at: 1_795_957_200_000, stopped: ["web"], swept: [] },
};
const SERVICE_STATUS = { container_id: "1f8a", image: "localhost/app:v2", state: "running", health: "healthy", restarts: 3, last_exit_code: 1, restart_at: null };
const HEARTBEAT = { device: "pi-17", agent_version: "0.1.0", at: "2026-11-28T13:00:00.000Z", deployments: { web: "Running" } };
const INFO = { device: "pi-17", hostname: "pi17", arch: "arm64", podman_version: "4.3.1", agent_version: "0.1.0" };

/** SCORE with the first service merged with `svc` (a key set to undefined is dropped). */
const withService = (svc: Record<string, unknown>) => ({ type: "PodmanV0", data: { services: [{ name: "web", image: "localhost/app:v2", ...svc }] } });
const withServices = (services: unknown) => ({ type: "PodmanV0", data: { services } });
const withLifecycle = (lifecycle: unknown) => ({ type: "PodmanV0", data: { services: [{ name: "web", image: "localhost/app:v2" }], lifecycle } });
const ok = (name: string) => ({ name, image: "localhost/app:v2" });

// ---- bad inputs, each with the exact error lines ----------------------------------------------

type Case = [title: string, codec: t.Mixed, input: unknown, errors: string[]];

const MB = "s3cr3t-".repeat(150_000); // 1,050,000 characters

const BAD: Case[] = [
  // top level and wrong types
  ["null score", ReconcileScore, null, ["(root): expected ReconcileScore, got null"]],
  ["array score", ReconcileScore, [SCORE], ["(root): expected ReconcileScore, got array(1)"]],
  ["string score", ReconcileScore, "PodmanV0", ['(root): expected ReconcileScore, got "PodmanV0"']],
  ["unknown score type", ReconcileScore, { ...SCORE, type: "KubernetesV1" }, ['type: expected "PodmanV0", got "KubernetesV1"']],
  ["missing type", ReconcileScore, { data: SCORE.data }, ['type: expected "PodmanV0", got nothing']],
  ["null data", ReconcileScore, { type: "PodmanV0", data: null }, ["data: expected PodmanV0Score, got null"]],
  ["unknown top-level field", ReconcileScore, { ...SCORE, version: 2 }, ["version: unknown field"]],
  ["unknown data field", ReconcileScore, { type: "PodmanV0", data: { ...SCORE.data, replicas: 3 } }, ["data.replicas: unknown field"]],
  // services
  ["no services", ReconcileScore, withServices([]), ["data.services: expected at least 1 item, got 0"]],
  ["services missing", ReconcileScore, { type: "PodmanV0", data: {} }, ["data.services: expected Array<PodmanService>, got nothing"]],
  ["services an object", ReconcileScore, withServices({ web: ok("web") }), ["data.services: expected Array<PodmanService>, got object"]],
  ["duplicate service names", ReconcileScore, withServices([ok("web"), ok("db"), ok("web")]), ['data.services[2].name: duplicate service name "web"']],
  ["too many services", ReconcileScore, withServices(Array.from({ length: 65 }, (_, i) => ok(`s${i}`))), ["data.services: expected at most 64 items, got 65"]],
  ["null service", ReconcileScore, withServices([ok("web"), null]), ["data.services[1]: expected PodmanService, got null"]],
  ["unknown service field", ReconcileScore, withServices([ok("web"), { ...ok("db"), imgae: "x" }]), ["data.services[1].imgae: unknown field (did you mean image?)"]],
  ["missing image", ReconcileScore, withServices([{ name: "web" }]), ["data.services[0].image: expected string, got nothing"]],
  // service names
  ["uppercase service name", ReconcileScore, withService({ name: "Web" }), [`data.services[0].name: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got "Web"`]],
  ["service name with a dot", ReconcileScore, withService({ name: "a.b" }), [`data.services[0].name: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got "a.b"`]],
  ["service name ending in -", ReconcileScore, withService({ name: "web-" }), [`data.services[0].name: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got "web-"`]],
  ["service name of 64", ReconcileScore, withService({ name: "a".repeat(64) }), ["data.services[0].name: must be at most 63 characters, got 64"]],
  ["empty service name", ReconcileScore, withService({ name: "" }), ["data.services[0].name: must not be empty"]],
  ["numeric service name", ReconcileScore, withService({ name: 5 }), ["data.services[0].name: expected string, got number 5"]],
  // images
  ["uppercase image repo", ReconcileScore, withService({ image: "localhost/App:v1" }), ['data.services[0].image: not a valid image reference: "localhost/App:v1"']],
  ["uppercase Docker Hub org", ReconcileScore, withService({ image: "MyOrg/app:v1" }), ['data.services[0].image: not a valid image reference: "MyOrg/app:v1"']],
  ["image with a space", ReconcileScore, withService({ image: "localhost/my app" }), ['data.services[0].image: not a valid image reference: "localhost/my app"']],
  ["empty image", ReconcileScore, withService({ image: "" }), ["data.services[0].image: must not be empty"]],
  ["image of 300 characters", ReconcileScore, withService({ image: "a".repeat(300) }), ["data.services[0].image: must be at most 255 characters, got 300"]],
  ["bad image tag", ReconcileScore, withService({ image: "localhost/app:-x" }), ['data.services[0].image: not a valid image reference: "localhost/app:-x"']],
  // command
  ["empty command", ReconcileScore, withService({ command: [] }), ["data.services[0].command: expected at least 1 item, got 0"]],
  ["command a string", ReconcileScore, withService({ command: "/bin/app --x" }), ['data.services[0].command: expected Array<Arg>, got "/bin/app --x"']],
  ["command with a number", ReconcileScore, withService({ command: ["/bin/app", 8080] }), ["data.services[0].command[1]: expected string, got number 8080"]],
  // env
  ["1 MB env value", ReconcileScore, withService({ env: { SECRET: MB } }), ["data.services[0].env: value of SECRET must be at most 32768 characters, got 1050000"]],
  ["env name starting with a digit", ReconcileScore, withService({ env: { "1BAD": "x" } }), ['data.services[0].env: invalid variable name "1BAD"']],
  ["env name with a dash", ReconcileScore, withService({ env: { "MY-VAR": "x" } }), ['data.services[0].env: invalid variable name "MY-VAR"']],
  ["empty env name", ReconcileScore, withService({ env: { "": "x" } }), ['data.services[0].env: invalid variable name ""']],
  ["env value a number (not echoed)", ReconcileScore, withService({ env: { PASSWORD: 12345678 } }), ["data.services[0].env.PASSWORD: expected string, got number"]],
  ["env an array", ReconcileScore, withService({ env: ["A=1"] }), ["data.services[0].env: expected an object of strings, got array"]],
  ["env a string (a secret pasted in place of the map)", ReconcileScore, withService({ env: "hunter2" }), ["data.services[0].env: expected an object of strings, got string"]],
  ["env null", ReconcileScore, withService({ env: null }), ["data.services[0].env: expected an object of strings, got null"]],
  // ports
  ["port 0", ReconcileScore, withService({ ports: [{ host_port: 0, container_port: 80 }] }), ["data.services[0].ports[0].host_port: expected an integer from 1 to 65535, got 0"]],
  ["port 70000", ReconcileScore, withService({ ports: [{ host_port: 80, container_port: 70000 }] }), ["data.services[0].ports[0].container_port: expected an integer from 1 to 65535, got 70000"]],
  ["port 1.5", ReconcileScore, withService({ ports: [{ host_port: 1.5, container_port: 80 }] }), ["data.services[0].ports[0].host_port: expected an integer from 1 to 65535, got 1.5"]],
  ['port "80"', ReconcileScore, withService({ ports: [{ host_port: 80, container_port: "80" }] }), ['data.services[0].ports[0].container_port: expected number, got "80"']],
  ["bad protocol", ReconcileScore, withService({ ports: [{ host_port: 80, container_port: 80, protocol: "http" }] }), ['data.services[0].ports[0].protocol: expected "tcp" | "udp" | "sctp", got "http"']],
  ["unknown port field", ReconcileScore, withService({ ports: [{ host_port: 80, container_port: 80, host_ip: "0.0.0.0" }] }), ["data.services[0].ports[0].host_ip: unknown field"]],
  ["null port", ReconcileScore, withService({ ports: [null] }), ["data.services[0].ports[0]: expected Port, got null"]],
  // volumes
  ["relative volume source", ReconcileScore, withService({ volumes: [{ source: "data", target: "/data" }] }), ['data.services[0].volumes[0].source: expected an absolute path, got "data"']],
  ["relative volume target", ReconcileScore, withService({ volumes: [{ source: "/srv", target: "./data" }] }), ['data.services[0].volumes[0].target: expected an absolute path, got "./data"']],
  ["read_only a string", ReconcileScore, withService({ volumes: [{ source: "/srv", target: "/data", read_only: "yes" }] }), ['data.services[0].volumes[0].read_only: expected boolean, got "yes"']],
  // health
  ["non-integer retries", ReconcileScore, withService({ health: { cmd: ["CMD", "true"], retries: 2.5 } }), ["data.services[0].health.retries: expected an integer from 0 to 100, got 2.5"]],
  ["health without cmd", ReconcileScore, withService({ health: { interval_secs: 5 } }), ["data.services[0].health.cmd: expected Array<HealthArg>, got nothing"]],
  ["unknown health field", ReconcileScore, withService({ health: { cmd: ["CMD", "true"], interval: 5 } }), ["data.services[0].health.interval: unknown field (did you mean interval_secs?)"]],
  ["health interval 0", ReconcileScore, withService({ health: { cmd: ["CMD", "true"], interval_secs: 0 } }), ["data.services[0].health.interval_secs: expected an integer from 1 to 86400, got 0"]],
  // lifecycle
  ["misspelt grace_period_sec", ReconcileScore, withLifecycle({ grace_period_sec: 5 }), ["data.lifecycle.grace_period_sec: unknown field (did you mean grace_period_secs?)"]],
  ["negative grace period", ReconcileScore, withLifecycle({ grace_period_secs: -1 }), ["data.lifecycle.grace_period_secs: expected an integer from 0 to 3600, got -1"]],
  ["absurd grace period", ReconcileScore, withLifecycle({ grace_period_secs: 1e12 }), ["data.lifecycle.grace_period_secs: expected an integer from 0 to 3600, got 1000000000000"]],
  ["grace period a string", ReconcileScore, withLifecycle({ grace_period_secs: "30" }), ['data.lifecycle.grace_period_secs: expected number, got "30"']],
  ["unknown stop signal", ReconcileScore, withLifecycle({ stop_signal: "SIGFOO" }), ['data.lifecycle.stop_signal: expected StopSignal, got "SIGFOO"']],
  ["stop signal a number", ReconcileScore, withLifecycle({ stop_signal: 15 }), ["data.lifecycle.stop_signal: expected StopSignal, got number 15"]],
  ["null lifecycle", ReconcileScore, withLifecycle(null), ["data.lifecycle: expected LifecyclePolicy, got null"]],
  ["min_ready_secs above 3600", ReconcileScore, withLifecycle({ min_ready_secs: 3601 }), ["data.lifecycle.min_ready_secs: expected an integer from 0 to 3600, got 3601"]],
  ["min_ready_secs a fraction", ReconcileScore, withLifecycle({ min_ready_secs: 0.5 }), ["data.lifecycle.min_ready_secs: expected an integer from 0 to 3600, got 0.5"]],
  // depends_on
  ["depends_on an unknown service", ReconcileScore, withServices([{ ...ok("web"), depends_on: ["dbb"] }, ok("db")]), ['data.services[0].depends_on[0]: no service named "dbb" in this score (did you mean db?)']],
  ["depends_on itself", ReconcileScore, withServices([{ ...ok("web"), depends_on: ["web"] }]), ['data.services[0].depends_on[0]: "web" cannot depend on itself']],
  ["depends_on listing a name twice", ReconcileScore, withServices([{ ...ok("web"), depends_on: ["db", "db"] }, ok("db")]), ['data.services[0].depends_on: lists "db" twice']],
  ["depends_on not a list", ReconcileScore, withServices([{ ...ok("web"), depends_on: "db" }, ok("db")]), ['data.services[0].depends_on: expected Array<ServiceName>, got "db"']],
  ["a dependency cycle", ReconcileScore, withServices([{ ...ok("web"), depends_on: ["api"] }, { ...ok("api"), depends_on: ["db"] }, { ...ok("db"), depends_on: ["web"] }]), ["data.services[0].depends_on: dependency cycle web → api → db → web"]],
  ["a cycle that does not start at the first service", ReconcileScore, withServices([{ ...ok("web"), depends_on: ["api"] }, { ...ok("api"), depends_on: ["db"] }, { ...ok("db"), depends_on: ["api"] }]), ["data.services[1].depends_on: dependency cycle api → db → api"]],
  // a misspelt field far from every known one gets no suggestion
  ["no suggestion when nothing is close", ReconcileScore, withService({ privileged: true }), ["data.services[0].privileged: unknown field"]],
  // service health in DeploymentState and the heartbeat's tick (docs/design.md, "Service health")
  ["state: unknown service health", DeploymentState, { ...STATE, services: { web: { ...SERVICE_STATUS, health: "ok" } } }, ['services.web.health: expected ServiceHealth, got "ok"']],
  ["state: negative restarts", DeploymentState, { ...STATE, services: { web: { ...SERVICE_STATUS, restarts: -1 } } }, ["services.web.restarts: expected a non-negative integer, got -1"]],
  ["state: retry_at not a time", DeploymentState, { ...STATE, retry_at: "soon" }, ['retry_at: expected an ISO-8601 time, got "soon"']],
  ["heartbeat: tick_secs 0", Heartbeat, { ...HEARTBEAT, tick_secs: 0 }, ["tick_secs: expected a positive number of seconds, got 0"]],
  // several errors at once, in order
  ["every error is reported", ReconcileScore, { type: "PodmanV0", data: { services: [{ name: "Web", image: "" }], lifecycle: { grace_period_sec: 5 } }, x: 1 }, [
    "x: unknown field",
    `data.services[0].name: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got "Web"`,
    "data.services[0].image: must not be empty",
    "data.lifecycle.grace_period_sec: unknown field (did you mean grace_period_secs?)",
  ]],

  // DeploymentState
  ["state: null", DeploymentState, null, ["(root): expected DeploymentState, got null"]],
  ["state: unknown field", DeploymentState, { ...STATE, extra: 1 }, ["extra: unknown field"]],
  ["state: bad phase", DeploymentState, { ...STATE, phase: "running" }, ['phase: expected Phase, got "running"']],
  ["state: bad machine state", DeploymentState, { ...STATE, state: "Running" }, ['state: expected MachineState, got "Running"']],
  ["state: bad score hash", DeploymentState, { ...STATE, score_hash: "sha256:abc" }, ['score_hash: expected sha256:<64 hex>, got "sha256:abc"']],
  ["state: negative revision", DeploymentState, { ...STATE, desired_revision: -1 }, ["desired_revision: expected a non-negative integer, got -1"]],
  ["state: last_error missing", DeploymentState, { ...STATE, last_error: undefined }, ["last_error: expected string | null, got nothing"]],
  ["state: last_error a number", DeploymentState, { ...STATE, last_error: 5 }, ["last_error: expected string | null, got number 5"]],
  ["state: non-integer seq", DeploymentState, { ...STATE, last_event_seq: 1.5 }, ["last_event_seq: expected a non-negative integer, got 1.5"]],
  ["state: not an ISO time", DeploymentState, { ...STATE, last_event_at: "2026" }, ['last_event_at: expected an ISO-8601 time, got "2026"']],
  ["state: container_ids key not a service", DeploymentState, { ...STATE, container_ids: { Web: "1f8a" } }, [`container_ids.Web: invalid key: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got "Web"`]],
  ["state: container id a number", DeploymentState, { ...STATE, container_ids: { web: 5 } }, ["container_ids.web: expected string, got number 5"]],
  ["state: device with a dot", DeploymentState, { ...STATE, device: "pi.17" }, [`device: must be letters, digits, '_' or '-', starting with a letter or digit, got "pi.17"`]],
  ["state: device with *", DeploymentState, { ...STATE, device: "pi*" }, [`device: must be letters, digits, '_' or '-', starting with a letter or digit, got "pi*"`]],
  ["state: device with >", DeploymentState, { ...STATE, device: ">" }, [`device: must be letters, digits, '_' or '-', starting with a letter or digit, got ">"`]],
  ["state: device with a space", DeploymentState, { ...STATE, device: "pi 17" }, [`device: must be letters, digits, '_' or '-', starting with a letter or digit, got "pi 17"`]],
  ["state: device of 254 bytes", DeploymentState, { ...STATE, device: "d".repeat(254) }, ["device: must be at most 253 bytes, got 254"]],
  ["state: empty device", DeploymentState, { ...STATE, device: "" }, ["device: must not be empty"]],
  ["state: deployment starting with -", DeploymentState, { ...STATE, deployment: "-web" }, [`deployment: must be letters, digits, '_' or '-', starting with a letter or digit, got "-web"`]],
  ["state: deployment starting with _", DeploymentState, { ...STATE, deployment: "_web" }, [`deployment: must be letters, digits, '_' or '-', starting with a letter or digit, got "_web"`]],

  // JournalEvent
  ["event: version 3", JournalEvent, { ...EVENT, v: 3 }, ["v: expected 1 | 2, got number 3"]],
  ["event v2: an XState cause", JournalEvent, { ...EVENT_V2, event: EVENT.event }, ['event.type: unknown event type "xstate.done.actor.stopOld"']],
  ["event v2: cause without type", JournalEvent, { ...EVENT_V2, event: { at: 1 } }, ["event.type: expected an event with a string `type`"]],
  ["event v2: unknown cause field", JournalEvent, { ...EVENT_V2, event: { ...EVENT_V2.event, actorId: "stopOld" } }, ["event.actorId: unknown field"]],
  ["event v2: cause time a string", JournalEvent, { ...EVENT_V2, event: { ...EVENT_V2.event, at: "2026-11-28T13:00:00.000Z" } }, ['event.at: expected number, got "2026-11-28T13:00:00.000Z"']],
  ["event v2: cause time a fraction", JournalEvent, { ...EVENT_V2, event: { ...EVENT_V2.event, at: 1.5 } }, ["event.at: expected epoch milliseconds (an integer ≥ 0), got 1.5"]],
  ["event v2: stop.done without swept", JournalEvent, { ...EVENT_V2, event: { type: "stop.done", at: 1, stopped: ["web"] } }, ["event.swept: expected Array<ContainerId>, got nothing"]],
  ["event v2: started key not a service", JournalEvent, { ...EVENT_V2, event: { type: "start.done", at: 1, started: { Web: "1f8a" } } }, [`event.started.Web: invalid key: must be a DNS label ([a-z0-9-], not starting or ending with '-'), got "Web"`]],
  ["event v2: desired.updated with a bad score", JournalEvent, { ...EVENT_V2, event: { type: "desired.updated", at: 1, hash: STATE.score_hash, revision: 3, score: { services: [] } } }, ["event.score.services: expected at least 1 item, got 0"]],
  ["event v2: timed out in no step", JournalEvent, { ...EVENT_V2, event: { type: "step.timed_out", at: 1, step: "pulling" } }, ['event.step: expected Step, got "pulling"']],
  ["event v2: resumed in no state", JournalEvent, { ...EVENT_V2, event: { type: "agent.resumed", at: 1, state: "stopping" } }, ['event.state: expected MachineState, got "stopping"']],
  ["event: n = 0", JournalEvent, { ...EVENT, n: 0 }, ["n: expected an integer ≥ 1, got 0"]],
  ["event: cause without type", JournalEvent, { ...EVENT, event: { output: 1 } }, ["event: expected an event with a string `type`"]],
  ["event: null cause", JournalEvent, { ...EVENT, event: null }, ["event: expected UnknownRecord, got null"]],
  ["event: bad from state", JournalEvent, { ...EVENT, from: "stopping" }, ['from: expected MachineState, got "stopping"']],
  ["event: unknown field", JournalEvent, { ...EVENT, msg_id: "x" }, ["msg_id: unknown field"]],
  ["event: time a number", JournalEvent, { ...EVENT, at: 1_700_000_000_000 }, ["at: expected string, got number 1700000000000"]],

  // Heartbeat
  ["heartbeat: bad phase", Heartbeat, { ...HEARTBEAT, deployments: { web: "running" } }, ['deployments.web: expected Phase, got "running"']],
  ["heartbeat: deployment key with a dot", Heartbeat, { ...HEARTBEAT, deployments: { "a.b": "Running" } }, [`deployments.a.b: invalid key: must be letters, digits, '_' or '-', starting with a letter or digit, got "a.b"`]],
  ["heartbeat: null deployments", Heartbeat, { ...HEARTBEAT, deployments: null }, ["deployments: expected DeploymentPhases, got null"]],
  ["heartbeat: time not ISO", Heartbeat, { ...HEARTBEAT, at: "1" }, ['at: expected an ISO-8601 time, got "1"']],
  ["heartbeat: unknown field", Heartbeat, { ...HEARTBEAT, uptime: 5 }, ["uptime: unknown field"]],

  // DeviceInfo
  ["info: podman_version a number", DeviceInfo, { ...INFO, podman_version: 4 }, ["podman_version: expected string | null, got number 4"]],
  ["info: arch missing", DeviceInfo, { ...INFO, arch: undefined }, ["arch: expected string, got nothing"]],
  ["info: unknown field", DeviceInfo, { ...INFO, os: "linux" }, ["os: unknown field"]],
  ["info: bad device", DeviceInfo, { ...INFO, device: "pi 17" }, [`device: must be letters, digits, '_' or '-', starting with a letter or digit, got "pi 17"`]],
];

describe("contracts", () => {
  describe(`codecs refuse bad input with exact, path-naming errors (${BAD.length} cases)`, () => {
    for (const [title, codec, input, errors] of BAD) {
      it(title, () => {
        // Through JSON, as off the wire (drops keys set to undefined), and as a value.
        const viaJson = decodeJson(codec, JSON.stringify(input) ?? "");
        expect(viaJson).to.deep.equal({ ok: false, errors });
        expect(decode(codec, JSON.parse(JSON.stringify(input)))).to.deep.equal({ ok: false, errors });
      });
    }

    it("a 1 MB env value's error gives its size, never its contents", () => {
      const r = decode(ReconcileScore, withService({ env: { SECRET: MB } }));
      expect(r.ok).to.equal(false);
      const text = r.ok ? "" : r.errors.join("\n");
      expect(text).to.not.include("s3cr3t");
      expect(text.length).to.be.below(200);
    });
  });

  describe("malformed JSON", () => {
    const cases: Array<[string, string]> = [
      ["", "(root): malformed JSON: Unexpected end of JSON input"],
      ['{"type": "PodmanV0",', "(root): malformed JSON: Expected double-quoted property name in JSON at position 20"],
      ["{'type': 'PodmanV0'}", "(root): malformed JSON: Expected property name or '}' in JSON at position 1"],
    ];
    for (const [text, line] of cases) {
      it(`refuses ${JSON.stringify(text)}`, () => {
        const r = decodeJson(ReconcileScore, text);
        expect(r.ok).to.equal(false);
        if (!r.ok) {
          expect(r.errors).to.have.length(1);
          // The engine's wording after the prefix may vary between Node versions.
          expect(r.errors[0]).to.match(/^\(root\): malformed JSON: /);
          if (process.versions.node.startsWith("20.") || process.versions.node.startsWith("22.")) expect(r.errors[0]).to.equal(line);
        }
      });
    }

    it("null JSON is a type error, not a parse error", () => {
      expect(decodeJson(ReconcileScore, "null")).to.deep.equal({ ok: false, errors: ["(root): expected ReconcileScore, got null"] });
    });
  });

  describe("the docs/design.md examples decode", () => {
    it("ReconcileScore, unchanged", () => {
      expect(decode(ReconcileScore, SCORE)).to.deep.equal({ ok: true, value: SCORE });
    });
    it("a minimal score; lifecycle defaults to SIGTERM / 30 s", () => {
      const r = decodeJson(ReconcileScore, '{"type":"PodmanV0","data":{"services":[{"name":"web","image":"localhost/app:v2"}]}}');
      expect(r.ok).to.equal(true);
      if (r.ok) expect(resolveLifecycle(r.value.data.lifecycle)).to.deep.equal({ stop_signal: "SIGTERM", grace_period_secs: 30 });
    });
    it("DeploymentState, also with nulls", () => {
      expect(decode(DeploymentState, STATE)).to.deep.equal({ ok: true, value: STATE });
      const fresh = { ...STATE, phase: "Pending", state: "pending", score_hash: null, desired_revision: null, container_ids: {}, last_error: "x", last_event_seq: 0, last_event_at: null };
      expect(decode(DeploymentState, fresh)).to.deep.equal({ ok: true, value: fresh });
    });
    it("DeploymentState with service health, Degraded, retry_at; a heartbeat with tick_secs", () => {
      const v = { ...STATE, phase: "Degraded", retry_at: "2026-11-28T13:05:00.000Z", services: { web: SERVICE_STATUS, db: { ...SERVICE_STATUS, container_id: null, state: "missing", health: "none", last_exit_code: null } } };
      expect(decode(DeploymentState, v)).to.deep.equal({ ok: true, value: v });
      expect(decode(Heartbeat, { ...HEARTBEAT, tick_secs: 30 })).to.deep.equal({ ok: true, value: { ...HEARTBEAT, tick_secs: 30 } });
    });
    it("a score with depends_on and min_ready_secs", () => {
      const v = { type: "PodmanV0", data: { services: [{ ...ok("web"), depends_on: ["db"] }, ok("db")], lifecycle: { min_ready_secs: 0 } } };
      expect(decode(ReconcileScore, v)).to.deep.equal({ ok: true, value: v });
    });
    it("JournalEvent, Heartbeat, DeviceInfo", () => {
      expect(decode(JournalEvent, EVENT)).to.deep.equal({ ok: true, value: EVENT });
      expect(decode(JournalEvent, EVENT_V2)).to.deep.equal({ ok: true, value: EVENT_V2 });
      expect(decode(Heartbeat, HEARTBEAT)).to.deep.equal({ ok: true, value: HEARTBEAT });
      expect(decode(DeviceInfo, INFO)).to.deep.equal({ ok: true, value: INFO });
      expect(decode(DeviceInfo, { ...INFO, podman_version: null }).ok).to.equal(true);
    });
    it("ISO times with an offset or without milliseconds", () => {
      for (const at of ["2026-11-28T13:00:00Z", "2026-11-28T14:00:00.123+01:00"]) expect(decode(Heartbeat, { ...HEARTBEAT, at }).ok, at).to.equal(true);
    });
    it("image references Podman takes", () => {
      for (const ref of ["busybox", "localhost/app:v2", "localhost:5000/app", "127.0.0.1:5000/team/app:1.0", "docker.io/library/busybox:latest", "Registry.Example.com/app", `app@sha256:${"a".repeat(64)}`]) {
        expect(decode(ImageRef, ref).ok, ref).to.equal(true);
      }
    });
    it("decodeOrThrow throws a DecodeError carrying the lines", () => {
      expect(() => decodeOrThrow(ReconcileScore, withLifecycle({ grace_period_sec: 5 }), "score"))
        .to.throw(DecodeError, "invalid score: data.lifecycle.grace_period_sec: unknown field");
    });
  });

  describe("canonical JSON and the score hash", () => {
    it("key order and white space never change the hash", () => {
      const a = JSON.parse('{"type":"PodmanV0","data":{"services":[{"name":"web","image":"x","env":{"A":"1","B":"2"}}]}}');
      const b = JSON.parse('{ "data" : { "services" : [ { "env": {"B":"2", "A":"1"}, "image" : "x", "name":"web" } ] },\n  "type": "PodmanV0" }');
      expect(canonicalHash(a)).to.equal(canonicalHash(b));
      expect(canonicalJson(b)).to.equal('{"data":{"services":[{"env":{"A":"1","B":"2"},"image":"x","name":"web"}]},"type":"PodmanV0"}');
    });
    it("array order does change it", () => {
      expect(canonicalHash(withServices([ok("a"), ok("b")]))).to.not.equal(canonicalHash(withServices([ok("b"), ok("a")])));
      expect(canonicalHash({ cmd: ["a", "b"] })).to.not.equal(canonicalHash({ cmd: ["b", "a"] }));
    });
    it("any value change changes it", () => {
      expect(canonicalHash(withLifecycle({ grace_period_secs: 30 }))).to.not.equal(canonicalHash(withLifecycle({ grace_period_secs: 31 })));
    });
    it("is sha256:<64 hex> and is accepted as a score_hash", () => {
      const h = canonicalHash(SCORE);
      expect(h).to.match(/^sha256:[0-9a-f]{64}$/);
      expect(decode(DeploymentState, { ...STATE, score_hash: h }).ok).to.equal(true);
    });
    it("known value: sha256 of {} is sha256 of the two characters {}", () => {
      expect(canonicalHash({})).to.equal("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    });
  });

  describe("name validators", () => {
    it("device and deployment names: 1 to 253 bytes of [A-Za-z0-9_-], first a letter or digit", () => {
      for (const good of ["pi-17", "A", "0", "web_shop-2", "d".repeat(253)]) expect(deviceOrDeploymentNameProblem(good), good).to.equal(null);
      const bad: Array<[string, string]> = [
        ["", "must not be empty"],
        ["d".repeat(254), "must be at most 253 bytes, got 254"],
        ["-pi", `must be letters, digits, '_' or '-', starting with a letter or digit, got "-pi"`],
        ["_pi", `must be letters, digits, '_' or '-', starting with a letter or digit, got "_pi"`],
        ["pi.17", `must be letters, digits, '_' or '-', starting with a letter or digit, got "pi.17"`],
        ["pi*", `must be letters, digits, '_' or '-', starting with a letter or digit, got "pi*"`],
        ["pi>", `must be letters, digits, '_' or '-', starting with a letter or digit, got "pi>"`],
        ["pi 17", `must be letters, digits, '_' or '-', starting with a letter or digit, got "pi 17"`],
        ["pi\t17", `must be letters, digits, '_' or '-', starting with a letter or digit, got "pi\\t17"`],
        ["pié", `must be letters, digits, '_' or '-', starting with a letter or digit, got "pié"`],
      ];
      for (const [name, problem] of bad) expect(deviceOrDeploymentNameProblem(name), name).to.equal(problem);
      expect(isDeviceId("pi-17")).to.equal(true);
    });
    it("the 253 limit counts bytes, not characters", () => {
      expect(deviceOrDeploymentNameProblem("é".repeat(127))).to.equal("must be at most 253 bytes, got 254");
    });
    it("service names are DNS labels of at most 63", () => {
      for (const good of ["web", "a", "0", "web-2", "a".repeat(63)]) expect(serviceNameProblem(good), good).to.equal(null);
      for (const bad of ["Web", "-web", "web-", "web_2", "a.b", "a b"]) expect(isServiceName(bad), bad).to.equal(false);
      expect(serviceNameProblem("a".repeat(64))).to.equal("must be at most 63 characters, got 64");
      expect(serviceNameProblem("")).to.equal("must not be empty");
    });
    it("container name is <deployment>.<service>", () => {
      expect(containerName("shop", "web")).to.equal("shop.web");
    });
  });
});
