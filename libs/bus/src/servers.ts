/** NATS server URLs: the credentials a URL may carry are taken out before anything else sees (or logs) it. */

export interface ServerList {
  /** The URLs without credentials: what is connected to and logged. */
  servers: string[];
  /** From the first URL that had any: `user:password@` gives user and pass, a lone `token@` a token (as NATS clients read it). */
  user?: string;
  pass?: string;
  token?: string;
}

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/\s]*)@/i;

/** Splits credentials off the URLs. nats.js ignores `user:password@` in a URL, so they are passed as options instead. */
export function parseServers(urls: string | string[]): ServerList {
  const out: ServerList = { servers: [] };
  let found = false;
  for (const url of Array.isArray(urls) ? urls : [urls]) {
    const m = USERINFO.exec(url);
    if (!m) {
      out.servers.push(url);
      continue;
    }
    out.servers.push(`${m[1] ?? ""}${url.slice(m[0].length)}`);
    if (found || m[2] === "") continue;
    found = true;
    const colon = m[2]!.indexOf(":");
    if (colon < 0) out.token = decode(m[2]!);
    else {
      out.user = decode(m[2]!.slice(0, colon));
      out.pass = decode(m[2]!.slice(colon + 1));
    }
  }
  return out;
}

/** The URL with any `user:password@` replaced, for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, (_all, scheme: string | undefined) => `${scheme ?? ""}[redacted]@`);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
