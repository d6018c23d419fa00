/**
 * The API key of this tab: kept in sessionStorage, so it lives as long as the tab and is never written to disk by the
 * page or shared with other tabs. Every API call sends it as a Bearer credential.
 */
const KEY = "meridian.console.credential";

export function storedCredential(): string | undefined {
  return sessionStorage.getItem(KEY) ?? undefined;
}

export function storeCredential(credential: string): void {
  sessionStorage.setItem(KEY, credential);
}

export function forgetCredential(): void {
  sessionStorage.removeItem(KEY);
}
