/** What the iDigi emulator's integration tests share besides the wire client (wire.ts): accounts and REST calls. */

export const USER = { username: "alice", password: "s3cret", cstId: 7603 };
export const OTHER = { username: "bob", password: "hunter2", cstId: 9999 };

export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}

/** POSTs a `<Monitor>` body to `/ws/Monitor` as `who`; returns the new monitor id from the Location header. */
export async function createXmlMonitor(httpUrl: string, body: string, who: { username: string; password: string } = USER): Promise<number> {
  const r = await fetch(`${httpUrl}/ws/Monitor`, { method: "POST", body, headers: { Authorization: basic(who.username, who.password) } });
  if (r.status !== 201) throw new Error(`monitor not created: ${r.status} ${await r.text()}`);
  return Number(r.headers.get("location")!.split("/").pop());
}
