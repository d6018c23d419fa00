import { createHmac, randomBytes } from "node:crypto";

export type TokenCheck = { ok: true; clientId: string } | { ok: false; reason: "missing" | "invalid" | "expired" };

/** Bearer tokens for the ADH profile: JWT-shaped (HS256 with a per-process key), remembered with their expiry. */
export class Tokens {
  private readonly key = randomBytes(32);
  private readonly issued = new Map<string, { clientId: string; exp: number }>();

  issue(clientId: string, lifetimeSeconds: number, issuer: string): { token: string; expiresIn: number } {
    const now = Date.now();
    const exp = now + lifetimeSeconds * 1000;
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const head = enc({ alg: "HS256", typ: "JWT" });
    const body = enc({
      iss: issuer,
      sub: clientId,
      client_id: clientId,
      aud: "ocsapi",
      iat: Math.floor(now / 1000),
      nbf: Math.floor(now / 1000),
      exp: Math.floor(exp / 1000),
      jti: randomBytes(8).toString("hex"),
    });
    const sig = createHmac("sha256", this.key).update(`${head}.${body}`).digest("base64url");
    const token = `${head}.${body}.${sig}`;
    this.issued.set(token, { clientId, exp });
    if (this.issued.size > 10_000) this.sweep(now);
    return { token, expiresIn: lifetimeSeconds };
  }

  check(authorization: string | undefined): TokenCheck {
    if (!authorization) return { ok: false, reason: "missing" };
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!m) return { ok: false, reason: "missing" };
    const t = this.issued.get(m[1]!);
    if (!t) return { ok: false, reason: "invalid" };
    if (Date.now() >= t.exp) return { ok: false, reason: "expired" };
    return { ok: true, clientId: t.clientId };
  }

  /** Every token issued so far is expired from now on. */
  expireAll(): number {
    const now = Date.now();
    for (const t of this.issued.values()) t.exp = Math.min(t.exp, now);
    return this.issued.size;
  }

  private sweep(now: number): void {
    for (const [k, t] of this.issued) if (t.exp < now - 3_600_000) this.issued.delete(k);
  }
}
