/**
 * The registry as JSON (ENTRA_EMULATOR_REGISTRY in main.ts, POST /_emulator/applications): resources, applications
 * and users, each bounded, so a typo fails at start naming the field instead of making a directory that refuses
 * every client.
 */
import { z } from "zod";
import type { ApplicationRegistration, ResourceApp, UserAccount } from "./options.js";

const name = z.string().min(1).max(256);
const list = z.array(name).max(100);

export const ResourceSchema = z
  .object({
    appId: z.string().min(1).max(128),
    displayName: name.optional(),
    identifierUris: z.array(z.string().min(1).max(512)).max(20).optional(),
    appRoles: list.optional(),
    scopes: list.optional(),
    audience: z.enum(["guid", "uri"]).optional(),
  })
  .strict();

export const ApplicationSchema = z
  .object({
    clientId: z.string().min(1).max(128),
    displayName: name.optional(),
    secrets: z.array(z.string().min(1).max(1024)).max(10).optional(),
    certificates: z.array(z.string().min(1).max(16_384)).max(10).optional(),
    publicClient: z.boolean().optional(),
    grants: z.record(z.string().min(1).max(128), z.object({ roles: list.optional(), scopes: list.optional() }).strict()).optional(),
    spaRedirectUris: z
      .array(z.url({ protocol: /^https?$/ }).max(2048))
      .max(100)
      .optional(),
  })
  .strict();

export const UserSchema = z
  .object({
    username: name,
    displayName: name.optional(),
    oid: z.string().min(1).max(128).optional(),
    appRoles: z.record(z.string().min(1).max(128), list).optional(),
  })
  .strict();

export const RegistrySchema = z
  .object({
    /** Replace the default resources (Omnia's) when given. */
    resources: z.array(ResourceSchema).max(100).optional(),
    /** Replace the default applications when given. */
    applications: z.array(ApplicationSchema).max(1000).optional(),
    /** Added to the default applications instead of replacing them. */
    extraApplications: z.array(ApplicationSchema).max(1000).optional(),
    users: z.array(UserSchema).min(1).max(1000).optional(),
    tenants: z.array(z.string().min(1).max(128)).max(100).optional(),
  })
  .strict();

export type Registry = {
  resources?: ResourceApp[];
  applications?: ApplicationRegistration[];
  extraApplications?: ApplicationRegistration[];
  users?: UserAccount[];
  tenants?: string[];
};

/** Parses registry JSON text; the error names the path of the first wrong field. */
export function parseRegistry(text: string): Registry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`registry is not JSON: ${(err as Error).message}`);
  }
  const r = RegistrySchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`registry ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}
