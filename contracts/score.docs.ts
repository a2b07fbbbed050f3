// What each field of a score means, for its reference and its JSON Schema. Types, limits and which
// fields exist come from the codecs themselves (codec.shape.ts); this says only what a codec can't:
// what the field is for, what its absence means, and an example. A test checks that every field of
// the codec has an entry here and every entry a field.
import { DEFAULT_LIFECYCLE, DEFAULT_MIN_READY_SECS, HEALTH_DEFAULTS } from "./score.codec.js";

export interface FieldDoc {
  /** One sentence: what the field is. */
  summary: string;
  /** More, when the summary is not enough. */
  details?: string;
  /** The value used when the field is absent (for JSON Schema's `default`). */
  default?: unknown;
  /** What an absent optional field means, when there is no single default value. */
  absent?: string;
  /** A value of the field, as it would be written. */
  example: unknown;
}

const S = "data.services[]";

export const SCORE_DOCS: Record<string, FieldDoc> = {
  type: {
    summary: "The kind of score. Only PodmanV0 exists; any other value is refused.",
    example: "PodmanV0",
  },
  data: {
    summary: "The deployment: its services and how they are stopped.",
    example: { services: [{ name: "web", image: "localhost/app:v2" }] },
  },
  "data.services": {
    summary: "The containers of the deployment, one per service.",
    details:
      "Each service runs as one Podman container named <deployment>.<service>. On an update the agent compares each service with what runs: a service whose spec is unchanged is not touched; a changed one is stopped, then started anew; one no longer listed is stopped and removed.",
    example: [{ name: "web", image: "localhost/app:v2" }, { name: "db", image: "localhost/db:16" }],
  },
  [`${S}.name`]: {
    summary: "The service's name, unique in the score: a DNS label.",
    details: "It names the container (<deployment>.<service>) and the service in status, history and depends_on.",
    example: "web",
  },
  [`${S}.image`]: {
    summary: "The container image: [host[:port]/]path[:tag][@sha256:digest].",
    details: "The agent pulls it when it is not on the device yet. Changing it replaces the service's container.",
    example: "localhost/app:v2",
  },
  [`${S}.command`]: {
    summary: "The arguments the container runs instead of the image's CMD (the image's ENTRYPOINT stays).",
    absent: "the image's CMD",
    example: ["/bin/app", "--port", "8080"],
  },
  [`${S}.env`]: {
    summary: "Environment variables of the container.",
    details: "Values are secrets: the agent never journals, publishes or logs them (history and errors show names only).",
    absent: "the image's environment only",
    example: { MODE: "prod", LOG_LEVEL: "info" },
  },
  [`${S}.ports`]: {
    summary: "Ports published on the device.",
    absent: "no port is published",
    example: [{ host_port: 8080, container_port: 8080 }],
  },
  [`${S}.ports[].host_port`]: {
    summary: "The device's port.",
    details: "A device's container policy may refuse low ports (below 1024).",
    example: 8080,
  },
  [`${S}.ports[].container_port`]: {
    summary: "The container's port it is forwarded to.",
    example: 8080,
  },
  [`${S}.ports[].protocol`]: {
    summary: "The port's protocol.",
    default: "tcp",
    example: "udp",
  },
  [`${S}.volumes`]: {
    summary: "Directories of the device bind-mounted into the container.",
    absent: "no bind mount",
    example: [{ source: "/srv/app/data", target: "/data" }],
  },
  [`${S}.volumes[].source`]: {
    summary: "The directory on the device (an absolute path).",
    details: "A device's container policy may allow only some paths.",
    example: "/srv/app/data",
  },
  [`${S}.volumes[].target`]: {
    summary: "Where it appears in the container (an absolute path).",
    example: "/data",
  },
  [`${S}.volumes[].read_only`]: {
    summary: "Mount it read-only.",
    default: false,
    example: true,
  },
  [`${S}.health`]: {
    summary: "A health check: the agent runs it and counts the service ready at its first pass.",
    details:
      "A service with a health check is ready when it first passes (within start_period_secs + (retries + 1) × interval_secs); one that fails retries times in a row is restarted.",
    absent: `ready once it has run for lifecycle.min_ready_secs (${DEFAULT_MIN_READY_SECS} s by default)`,
    example: { cmd: ["CMD-SHELL", "wget -qO- localhost:8080/health"], interval_secs: 5, timeout_secs: 2, retries: 3 },
  },
  [`${S}.health.cmd`]: {
    summary: 'The check, Docker style: ["CMD", prog, args…] runs a program, ["CMD-SHELL", "a shell line"] runs /bin/sh -c; a list without either means CMD.',
    example: ["CMD-SHELL", "wget -qO- localhost:8080/health"],
  },
  [`${S}.health.interval_secs`]: {
    summary: "Seconds between checks.",
    default: HEALTH_DEFAULTS.interval_secs,
    example: 5,
  },
  [`${S}.health.timeout_secs`]: {
    summary: "Seconds a check may take before it counts as failed.",
    default: HEALTH_DEFAULTS.timeout_secs,
    example: 2,
  },
  [`${S}.health.retries`]: {
    summary: "Failed checks in a row that make the service unhealthy.",
    default: HEALTH_DEFAULTS.retries,
    example: 3,
  },
  [`${S}.health.start_period_secs`]: {
    summary: "Seconds after start during which failed checks don't count.",
    default: HEALTH_DEFAULTS.start_period_secs,
    example: 10,
  },
  [`${S}.depends_on`]: {
    summary: "Other services of this score that are started before this one and stopped after it.",
    details: "Each name must be another service of the score; a cycle is refused.",
    absent: "no ordering",
    example: ["db"],
  },
  "data.lifecycle": {
    summary: "How the deployment's services are stopped and when a start counts; one policy for every service.",
    absent: "every field's default",
    example: { stop_signal: "SIGTERM", grace_period_secs: 30 },
  },
  "data.lifecycle.stop_signal": {
    summary: "The signal that asks a container to stop.",
    details: "It is set when the container is created, so changing it replaces every service.",
    default: DEFAULT_LIFECYCLE.stop_signal,
    example: "SIGINT",
  },
  "data.lifecycle.grace_period_secs": {
    summary: "Seconds a container has to exit after the stop signal, before it is killed (SIGKILL).",
    details: "Changing it replaces every service.",
    default: DEFAULT_LIFECYCLE.grace_period_secs,
    example: 10,
  },
  "data.lifecycle.min_ready_secs": {
    summary: "Seconds a started service without a health check must keep running before its start counts.",
    default: DEFAULT_MIN_READY_SECS,
    example: 5,
  },
};

/** A score that uses every field, for the reference's opening example. */
export const FULL_EXAMPLE = {
  type: "PodmanV0",
  data: {
    services: [
      {
        name: "web",
        image: "localhost/app:v2",
        command: ["/bin/app", "--port", "8080"],
        env: { MODE: "prod" },
        ports: [{ host_port: 8080, container_port: 8080, protocol: "tcp" }],
        volumes: [{ source: "/srv/app/data", target: "/data", read_only: false }],
        health: { cmd: ["CMD-SHELL", "wget -qO- localhost:8080/health"], interval_secs: 5, timeout_secs: 2, retries: 3, start_period_secs: 0 },
        depends_on: ["db"],
      },
      { name: "db", image: "localhost/db:16", volumes: [{ source: "/srv/app/db", target: "/var/lib/db" }] },
    ],
    lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 30, min_ready_secs: 1 },
  },
};
