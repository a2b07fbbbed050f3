// Codecs for the parts of Podman's libpod responses that fleet-agent reads (Podman 4.3.1; see
// docs/podman-libpod.md). Podman is not our wire contract: these are deliberately NOT
// exact. They name only the fields we use and tolerate every other one, and they accept Go's `null`
// for empty slices and maps.
import * as t from "io-ts";
import { refine } from "../../contracts/decode.js";

/** `null` or `c`; Go encodes an empty slice or map as null. */
const nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null]);

const StringMap = t.record(t.string, t.string);

/** Body of every libpod error response (304 has no body). */
export const LibpodErrorBody = t.partial({ cause: t.string, message: t.string, response: t.number }, "LibpodErrorBody");

export const VersionResponse = t.type(
  {
    /** The Podman Engine's version, e.g. "4.3.1" (the Docker-compatible top-level field). */
    Version: t.string,
    Components: nullable(
      t.array(
        t.intersection([
          t.type({ Name: t.string, Version: t.string }),
          t.partial({ Details: t.partial({ APIVersion: t.string, MinAPIVersion: t.string }) }),
        ]),
      ),
    ),
  },
  "VersionResponse",
);

export const CreateResponse = t.type({ Id: t.string, Warnings: nullable(t.array(t.string)) }, "CreateResponse");

/** Podman's health status names; "" before a container's first start. */
export const PodmanHealthStatus = t.keyof({ "": null, starting: null, healthy: null, unhealthy: null }, '"" | "starting" | "healthy" | "unhealthy"');

/** One run in a container's health log. 4.3.1 keeps the last five; ExitCode -1 is a run over its timeout. */
const HealthLogEntry = t.partial({ Start: t.string, End: t.string, ExitCode: t.number, Output: t.string }, "HealthLogEntry");

/** `Config.Healthcheck` read back: durations in nanoseconds; zero ones are left out (omitempty). */
export const InspectHealthConfig = t.intersection(
  [t.type({ Test: nullable(t.array(t.string)) }), t.partial({ Interval: t.number, Timeout: t.number, StartPeriod: t.number, Retries: t.number })],
  "InspectHealthConfig",
);

export const ContainerInspect = t.type(
  {
    Id: t.string,
    Name: t.string,
    ImageName: t.string,
    State: t.intersection([
      t.type({ Status: t.string, Running: t.boolean, Pid: t.number, ExitCode: t.number }),
      t.partial({
        StartedAt: t.string,
        FinishedAt: t.string,
        Health: t.partial({ Status: t.string, FailingStreak: t.number }),
      }),
    ]),
    Config: t.intersection([
      t.type({ Labels: nullable(StringMap) }),
      // A number in 4.x, a string ("SIGTERM") in 5.x.
      t.partial({ StopSignal: t.union([t.number, t.string]), StopTimeout: t.number, Healthcheck: InspectHealthConfig }),
    ]),
  },
  "ContainerInspect",
);

export const ListedContainer = t.type(
  {
    Id: t.string,
    Names: nullable(t.array(t.string)),
    Image: t.string,
    Labels: nullable(StringMap),
    State: t.string,
    ExitCode: t.number,
    Exited: t.boolean,
    StartedAt: t.number,
    Pid: t.number,
  },
  "ListedContainer",
);
export const ListResponse = nullable(t.array(ListedContainer));

export const RemoveReport = t.intersection([t.type({ Id: t.string }), t.partial({ RawInput: t.string, Err: t.string })]);
export const RemoveResponse = nullable(t.array(RemoveReport));

/**
 * What a health report reads of `containers/{id}/json`: stricter than ContainerInspect, as these
 * fields decide whether a service is restarted.
 */
export const HealthInspect = t.type(
  {
    Id: t.string,
    Name: t.string,
    State: t.intersection([
      t.type({
        Status: t.string,
        Running: t.boolean,
        Health: t.type({ Status: PodmanHealthStatus, FailingStreak: t.number, Log: nullable(t.array(HealthLogEntry)) }),
      }),
      t.partial({ StartedAt: t.string }),
    ]),
    Config: t.intersection([t.type({ Labels: nullable(StringMap) }), t.partial({ Healthcheck: InspectHealthConfig, StopTimeout: t.number })]),
  },
  "HealthInspect",
);

/**
 * The body of `containers/{id}/healthcheck`. In 4.3.1 it is only this run's verdict: `Status` is
 * "healthy" on a pass and "unhealthy" on any failure, whatever `retries` says; `FailingStreak` is
 * always 0 and `Log` always null. Podman's own bookkeeping is in the container's inspect.
 */
export const HealthCheckResult = t.type(
  {
    Status: t.string,
    FailingStreak: t.number,
    Log: nullable(t.array(t.partial({ Start: t.string, End: t.string, ExitCode: t.number, Output: t.string }))),
  },
  "HealthCheckResult",
);

/** One line of the newline-delimited JSON that `images/pull` streams. */
export const PullLine = t.partial(
  { stream: t.string, error: t.string, id: t.string, images: nullable(t.array(t.string)) },
  "PullLine",
);

/** One line of `GET /libpod/events?stream=true`. */
export const LibpodEvent = t.intersection(
  [
    t.type({
      Type: t.string,
      Action: t.string,
      Actor: t.type({ ID: t.string, Attributes: nullable(StringMap) }),
      time: t.number,
    }),
    t.partial({ timeNano: t.number, status: t.string, HealthStatus: t.string }),
  ],
  "LibpodEvent",
);

const ExitCodeString = refine(t.string, "ExitCodeString", (s) => (/^-?\d{1,10}$/.test(s) ? null : `expected an integer exit code, got ${JSON.stringify(s.slice(0, 40))}`));

/** The attributes of a `died` event that the runtime reads: the exit code, as a decimal string. */
export const DiedAttributes = t.type({ containerExitCode: ExitCodeString }, "DiedAttributes");

/** A `health_status` event's status (4.3.1: the status from before the check that emitted it). */
export const HealthStatusEvent = t.type({ HealthStatus: t.keyof({ starting: null, healthy: null, unhealthy: null }, '"starting" | "healthy" | "unhealthy"') }, "HealthStatusEvent");

export type VersionResponse = t.TypeOf<typeof VersionResponse>;
export type CreateResponse = t.TypeOf<typeof CreateResponse>;
export type ContainerInspect = t.TypeOf<typeof ContainerInspect>;
export type ListedContainer = t.TypeOf<typeof ListedContainer>;
export type RemoveReport = t.TypeOf<typeof RemoveReport>;
export type HealthCheckResult = t.TypeOf<typeof HealthCheckResult>;
export type PullLine = t.TypeOf<typeof PullLine>;
export type LibpodEvent = t.TypeOf<typeof LibpodEvent>;
export type HealthInspect = t.TypeOf<typeof HealthInspect>;
export type PodmanHealthStatus = t.TypeOf<typeof PodmanHealthStatus>;
