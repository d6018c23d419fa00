import type { Bus } from "@meridian/bus";
import { SecretKeyring } from "@meridian/service-kit";
import { describe, expect, it } from "vitest";
import { CredentialsError } from "./errors.js";
import { type ApplicationRecord, type ApplicationSettings, IotcStore } from "./store.js";

// The sealing needs no bus: the buckets are only made, never used, here.
const bus = {} as Bus;
const keyA = Buffer.alloc(32, 1);
const keyB = Buffer.alloc(32, 2);
const ring = (current: Buffer, previous: Buffer[] = []) => new SecretKeyring({ current, previous, keyIdLabel: "test\0" });

const settings: ApplicationSettings = {
  id: "plant",
  displayName: "Plant",
  idScope: "0ne00123456",
  provisioningHost: "global.azure-devices-provisioning.net",
  writablePropertyAck: "accepted",
};
const groupKey = Buffer.alloc(32, 7).toString("base64");

function record(store: IotcStore, s: ApplicationSettings = settings): ApplicationRecord {
  return { ...store.sealApplication(s, { kind: "group_key", groupKey }), origin: "api", createTime: "2026-11-30T00:00:00Z" };
}

describe("IotcStore sealing", () => {
  it("an application's group key round-trips and is not in the record in the clear", () => {
    const store = new IotcStore(bus, ring(keyA));
    const r = record(store);
    expect(JSON.stringify(r)).not.toContain(groupKey);
    expect(store.openApplication(r)).toEqual({ kind: "group_key", groupKey });
  });

  it.each([
    ["id_scope", { idScope: "0ne00999999" }],
    ["provisioning_host", { provisioningHost: "evil.example.com" }],
    ["gateway_host", { gatewayHost: "evil.example.com:8883" }],
    ["id", { id: "other" }],
  ])("a record re-pointed (%s changed in KV) does not open", (_, change) => {
    const store = new IotcStore(bus, ring(keyA));
    const repointed = { ...record(store), ...change };
    expect(() => store.openApplication(repointed)).toThrow(CredentialsError);
    expect(() => store.openApplication(repointed)).toThrow(/does not open for its record/);
  });

  it("a credential kind swapped in KV does not open", () => {
    const store = new IotcStore(bus, ring(keyA));
    const r = record(store);
    const swapped = { ...r, credential: { ...(r.credential as { kind: "group_key"; sealed: never }), kind: "device_key" as const } };
    expect(() => store.openApplication(swapped as ApplicationRecord)).toThrow(CredentialsError);
  });

  it("opens under a previous key (rotation) and says it is stale; an unknown key is named, not the secret", () => {
    const old = new IotcStore(bus, ring(keyA));
    const r = record(old);
    const rotated = new IotcStore(bus, ring(keyB, [keyA]));
    expect(rotated.openApplication(r)).toEqual({ kind: "group_key", groupKey });
    expect(rotated.isStale(r)).toBe(true);
    const lost = new IotcStore(bus, ring(keyB));
    expect(() => lost.openApplication(r)).toThrow(/IOTC_CREDENTIALS_PREVIOUS_KEYS/);
    expect(() => lost.openApplication(r)).not.toThrow(new RegExp(groupKey.slice(0, 10)));
  });

  it("without IOTC_CREDENTIALS_KEY no secret is kept", () => {
    const store = new IotcStore(bus, undefined);
    expect(() => store.sealApplication(settings, { kind: "group_key", groupKey })).toThrow(/needs IOTC_CREDENTIALS_KEY/);
    expect(store.sealApplication(settings, undefined)).toEqual(settings);
  });

  it("a device's own credential is bound to its application's scope and its id", () => {
    const store = new IotcStore(bus, ring(keyA));
    const sealed = store.sealOwnCredential(settings, "pump-1", { kind: "device_key", deviceKey: groupKey });
    const dev = { applicationId: "plant", deviceId: "pump-1", credential: sealed, createTime: "" };
    expect(store.openOwnCredential(settings, dev)).toEqual({ kind: "device_key", deviceKey: groupKey });
    expect(() => store.openOwnCredential(settings, { ...dev, deviceId: "pump-2" })).toThrow(CredentialsError);
    expect(() => store.openOwnCredential({ ...settings, idScope: "0ne00999999" }, dev)).toThrow(CredentialsError);
  });

  it("device keys in KV are escaped reversibly", () => {
    for (const id of ["pump-1", "a.b:c_d", "x=y"]) {
      const k = IotcStore.deviceKey("plant", id);
      expect(k).toMatch(/^[-/_=.A-Za-z0-9]+$/);
      expect(IotcStore.deviceIdOfKey(k)).toEqual({ applicationId: "plant", deviceId: id });
    }
    expect(IotcStore.deviceKey("plant", "a.b")).not.toBe(IotcStore.deviceKey("plant", "a_b"));
  });
});
