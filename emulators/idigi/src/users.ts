/** The accounts of the emulated Device Cloud: REST Basic auth and push ConnectRequests check the same list. */
export interface User {
  username: string;
  password: string;
  /** Customer id: a user sees and connects to the monitors of its own customer only. */
  cstId: number;
}

export const DEFAULT_USER: User = { username: "emulator", password: "emulator", cstId: 1234 };
