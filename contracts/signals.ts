// Stop signals a score may name, with their Linux numbers: Podman's create takes the number
// (the string "SIGTERM" is a 500 decode error on 4.3.1).
export const STOP_SIGNALS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGWINCH: 28,
  SIGPWR: 30,
} as const;

export type StopSignal = keyof typeof STOP_SIGNALS;

export const signalNumber = (s: StopSignal): number => STOP_SIGNALS[s];
