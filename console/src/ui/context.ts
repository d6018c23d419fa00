import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { ClientOf } from "../api.js";

export type Caller = { state: "loading" } | { state: "known"; name: string; roles: string[] } | { state: "unknown"; reason: string };

export interface ConsoleState {
  client: ClientOf;
  caller: Caller;
  /** A call was refused as unauthenticated: the key is no longer good (revoked, or the gateway's identities changed). */
  onAuthFailure: (message: string) => void;
}

export const ConsoleContext = createContext<ConsoleState | undefined>(undefined);

export function useConsole(): ConsoleState {
  const state = useContext(ConsoleContext);
  if (!state) throw new Error("useConsole outside ConsoleContext");
  return state;
}

/** The caller's roles when known; undefined while loading or when it may not ask. */
export function rolesOf(caller: Caller): string[] | undefined {
  return caller.state === "known" ? caller.roles : undefined;
}
