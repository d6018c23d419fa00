import { Code, ConnectError } from "@connectrpc/connect";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { clientFactory, describeError, gatewayTransport } from "./api.js";
import { DeadLettersPage } from "./pages/dead-letters.js";
import { OverviewPage } from "./pages/overview.js";
import { PlatformsPage } from "./pages/platforms.js";
import { RoutesPage } from "./pages/routes.js";
import { SignInPage } from "./pages/sign-in.js";
import { TelemetryPage } from "./pages/telemetry.js";
import { credentialExpiry, forgetCredential, storeCredential, storedCredential } from "./session.js";
import { type Caller, ConsoleContext } from "./ui/context.js";

const PAGES = [
  { path: "/", title: "Overview", Page: OverviewPage },
  { path: "/routes", title: "Routes", Page: RoutesPage },
  { path: "/dead-letters", title: "Dead letters", Page: DeadLettersPage },
  { path: "/telemetry", title: "Live telemetry", Page: TelemetryPage },
  { path: "/platforms", title: "Platforms", Page: PlatformsPage },
] as const;

function usePath(): [string, (to: string) => void] {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const onPop = () => setPath(window.location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  return [
    path,
    (to: string) => {
      if (to === window.location.pathname) return;
      window.history.pushState(null, "", to);
      setPath(to);
    },
  ];
}

export function App() {
  const [credential, setCredential] = useState(storedCredential());
  if (!credential) {
    return (
      <SignInPage
        onSignIn={(key, expiresAt) => {
          storeCredential(key, expiresAt);
          setCredential(key);
        }}
      />
    );
  }
  return (
    <Console
      credential={credential}
      onSignOut={() => {
        forgetCredential();
        setCredential(undefined);
      }}
    />
  );
}

function Console({ credential, onSignOut }: { credential: string; onSignOut: () => void }) {
  const client = useMemo(() => clientFactory(gatewayTransport(credential)), [credential]);
  const [caller, setCaller] = useState<Caller>({ state: "loading" });
  const [authLost, setAuthLost] = useState<string | undefined>();
  const [path, navigate] = usePath();
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];

  useEffect(() => {
    client(StatusService)
      .getCaller({})
      .then(
        (c) => setCaller({ state: "known", name: c.name, roles: c.roles }),
        (err) => {
          const code = ConnectError.from(err).code;
          if (code === Code.Unauthenticated) setAuthLost(describeError(err));
          // Without status:read the caller cannot ask: actions stay enabled and the API decides each one.
          setCaller({ state: "unknown", reason: describeError(err) });
        },
      );
  }, [client]);

  useEffect(() => {
    document.title = `${page.title} · Meridian console`;
  }, [page]);

  // A sign-in by redirect ends when its access token expires (no refresh token is asked for): the same banner as a
  // revoked key, at that moment rather than at the next refused call.
  useEffect(() => {
    const expiresAt = credentialExpiry();
    if (expiresAt === undefined) return;
    const expired = () => setAuthLost("Your sign-in has expired.");
    const timer = setTimeout(expired, Math.max(0, Math.min(expiresAt - Date.now(), 2 ** 31 - 1)));
    return () => clearTimeout(timer);
  }, [credential]);

  const onAuthFailure = useCallback((message: string) => setAuthLost(message), []);
  const context = useMemo(() => ({ client, caller, onAuthFailure }), [client, caller, onAuthFailure]);

  return (
    <ConsoleContext.Provider value={context}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Meridian</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <a
                  href={p.path}
                  aria-current={p === page ? "page" : undefined}
                  onClick={(e) => {
                    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
                    e.preventDefault();
                    navigate(p.path);
                  }}
                >
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who" data-testid="caller">
          {caller.state === "known" ? `${caller.name} · ${caller.roles.join(", ")}` : caller.state === "unknown" ? "roles unknown" : ""}
        </span>
        <button type="button" class="secondary" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {authLost && (
        <div class="banner error" role="alert">
          {authLost}{" "}
          <button type="button" onClick={onSignOut}>
            Sign in again
          </button>
        </div>
      )}
      <main id="main" tabIndex={-1}>
        <h1>{page.title}</h1>
        <page.Page />
      </main>
    </ConsoleContext.Provider>
  );
}
