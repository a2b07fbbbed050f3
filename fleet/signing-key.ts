// Signing keys read from files: an operator's (`fleetctl --signing-key FILE`) and a device's own,
// the seed of its NATS identity (`--nkey FILE`, or inside a `--creds` file). The file is a secret:
// errors name its path and the problem, never its content.
import { readFileSync } from "node:fs";
import { signingKeyFromText, type SigningKey } from "../contracts/nkey.js";
import { AuthFileError, type NatsAuth } from "./auth.js";

/** The signing key in the seed (or creds) file at `path`; throws AuthFileError naming the file. */
export function readSigningKey(what: string, path: string): SigningKey {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new AuthFileError(`${what} ${JSON.stringify(path)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "unreadable"})`);
  }
  const r = signingKeyFromText(text);
  if (!r.ok) throw new AuthFileError(`${what} ${JSON.stringify(path)}: ${r.error}`);
  return r.key;
}

/**
 * The key a device signs its reports with: the seed it authenticates to NATS with. None with a
 * user and password, or no auth at all: its reports then go unsigned (docs/design.md, "Report
 * signatures").
 */
export function deviceSigningKey(auth: NatsAuth | undefined): SigningKey | null {
  if (auth?.nkeyFile) return readSigningKey("nkey seed file", auth.nkeyFile);
  if (auth?.credsFile) return readSigningKey("creds file", auth.credsFile);
  return null;
}
