// The two ways an operator's request fails, shared by fleetctl and the dashboard: fleetctl maps
// them to its exit codes (2 and 1), the dashboard to HTTP statuses.

/** A usage or validation problem: nothing was written. */
export class UsageError extends Error {
  constructor(message: string, readonly lines: string[] = []) {
    super(message);
    this.name = "UsageError";
  }
}

/** The operation failed or was refused (NATS unreachable, a concurrent change, a missing key). */
export class OperationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OperationError";
  }
}
