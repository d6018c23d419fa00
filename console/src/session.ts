/**
 * The credential of this tab — an API key, or the access token of a sign-in by redirect — kept in sessionStorage, so
 * it lives as long as the tab and is never written to disk by the page or shared with other tabs. Every API call
 * sends it as a Bearer credential. An access token's expiry is kept beside it, so the page can say when it ends.
 */
import { forgetPendingSignIn } from "./oidc.js";

const KEY = "meridian.console.credential";
const EXPIRES = "meridian.console.credential-expires";

export function storedCredential(): string | undefined {
  return sessionStorage.getItem(KEY) ?? undefined;
}

/** `expiresAt`: epoch ms at which the credential stops working (an access token), none for an API key. */
export function storeCredential(credential: string, expiresAt?: number): void {
  sessionStorage.setItem(KEY, credential);
  if (expiresAt === undefined) sessionStorage.removeItem(EXPIRES);
  else sessionStorage.setItem(EXPIRES, String(expiresAt));
}

export function credentialExpiry(): number | undefined {
  const v = Number(sessionStorage.getItem(EXPIRES) ?? Number.NaN);
  return Number.isFinite(v) ? v : undefined;
}

export function forgetCredential(): void {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(EXPIRES);
  forgetPendingSignIn();
}
