/**
 * Node-RED for `npm run bench:vs-node-red`: headless (no editor, no admin API), the flow of this folder, credentials
 * in plain JSON in the bench's throwaway --userDir (credentialSecret false: the bench writes them there at start).
 * The bench passes --port and --userDir; everything else is here.
 */
module.exports = {
  flowFile: "flows.json",
  credentialSecret: false,
  flowFilePretty: false,
  // No editor and no admin API: only the flow's own http endpoints are served.
  httpAdminRoot: false,
  httpNodeRoot: "/",
  disableEditor: true,
  // Each request of the job is ~25 KB of JSON; Node-RED's default body limit (100 KB) would hold it, this is headroom.
  apiMaxLength: "5mb",
  httpRequestTimeout: 30000,
  logging: { console: { level: process.env.NODE_RED_LOG_LEVEL || "warn", metrics: false, audit: false } },
  diagnostics: { enabled: false },
  runtimeState: { enabled: false },
  telemetry: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  functionExternalModules: false,
  editorTheme: { projects: { enabled: false } },
};
