import { describe, expect, it } from "vitest";
import { loadSdk, presetUserAgent, sdkUserAgent } from "./sdk.js";

const { device, deviceMqtt } = loadSdk();

/** A hub transport as device.ts makes one (SAS), never connected. */
function hubTransport() {
  const auth = device.SharedAccessKeyAuthenticationProvider.fromConnectionString(
    `HostName=hub.example;DeviceId=pump-1;SharedAccessKey=${Buffer.alloc(32, 1).toString("base64")}`,
  );
  return new deviceMqtt.Mqtt(auth) as unknown as { _ensureAgentString(done: () => void): void; _userAgentString?: string };
}

/** Whether the transport's agent string is ready at once (no getos run, which answers later: a shell runs lsb_release). */
function readyAtOnce(transport: ReturnType<typeof hubTransport>): boolean {
  let called = false;
  transport._ensureAgentString(() => {
    called = true;
  });
  return called;
}

describe("the SDK's user agent", () => {
  it("is made once per process and is the SDK's own string", async () => {
    expect(sdkUserAgent()).toBe(sdkUserAgent());
    expect(await sdkUserAgent()).toMatch(/^azure-iot-device\/\d+\.\d+\.\d+ \(node v\d+[^)]*\)$/);
    expect(await sdkUserAgent()).toBe(await device.getUserAgentString(""));
  });

  it("is given to every new hub transport, which then does not make its own", async () => {
    for (const transport of [hubTransport(), hubTransport()]) {
      await presetUserAgent(transport);
      expect(transport._userAgentString).toBe(await sdkUserAgent());
      expect(readyAtOnce(transport)).toBe(true);
    }
  });
});
