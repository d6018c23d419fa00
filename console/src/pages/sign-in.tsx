import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { useEffect, useRef, useState } from "preact/hooks";
import { describeError, gatewayTransport } from "../api.js";
import { CALLBACK_PATH, type ConsoleSignInConfig, completeSignIn, loadSignInConfig, SignInError, startSignIn } from "../oidc.js";

/**
 * How a person signs in, as the gateway says at /console/config.json: an API key, and/or by redirect to an OIDC
 * provider ("Sign in with …"; src/oidc.ts). Until the gateway has answered, the key field is shown, as before there was
 * a choice. At CALLBACK_PATH this page completes a sign-in by redirect.
 *
 * A key is checked before it is kept: GetCaller answers for any valid key holding status:read, and a valid key
 * without that role is refused with permission_denied (still a valid key: it is kept). Only an unauthenticated
 * answer or no answer keeps the person on this page.
 */
export function SignInPage({ onSignIn }: { onSignIn: (credential: string, expiresAt?: number) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [redirectError, setRedirectError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [config, setConfig] = useState<ConsoleSignInConfig | undefined>();
  const [completing, setCompleting] = useState(window.location.pathname === CALLBACK_PATH);
  const signedIn = useRef(onSignIn);
  signedIn.current = onSignIn;

  // Once per visit of the page: a callback is completed once (its pending sign-in is used up by the first try).
  useEffect(() => {
    let live = true;
    const atCallback = window.location.pathname === CALLBACK_PATH;
    const callbackUrl = new URL(window.location.href);
    loadSignInConfig()
      .then(async (c) => {
        if (!live) return;
        setConfig(c);
        if (!atCallback) return;
        // The code and state are in the address: take them out of it and of the history, whatever happens next.
        window.history.replaceState(null, "", "/");
        if (!c.oidc) throw new SignInError("This gateway offers no sign-in by redirect (CONSOLE_OIDC_AUTHORITY is not set).");
        const done = await completeSignIn(c.oidc, callbackUrl);
        if (!live) return;
        window.history.replaceState(null, "", done.returnTo);
        signedIn.current(done.accessToken, done.expiresAt);
      })
      .catch((err: unknown) => {
        if (live) setRedirectError(err instanceof SignInError ? err.message : `Sign-in failed: ${(err as Error).message}`);
      })
      .finally(() => {
        if (live) setCompleting(false);
      });
    return () => {
      live = false;
    };
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const credential = key.trim();
    if (!credential) {
      setError("Paste an API key (mrd_…) or an OIDC access token.");
      return;
    }
    setBusy(true);
    setError(undefined);
    setRedirectError(undefined);
    try {
      await createClient(StatusService, gatewayTransport(credential)).getCaller({});
      onSignIn(credential);
    } catch (err) {
      if (ConnectError.from(err).code === Code.PermissionDenied) onSignIn(credential);
      else setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const redirect = async () => {
    if (!config?.oidc) return;
    setBusy(true);
    setError(undefined);
    setRedirectError(undefined);
    try {
      await startSignIn(config.oidc, window.location.pathname + window.location.search);
    } catch (err) {
      setRedirectError(err instanceof SignInError ? err.message : `Sign-in failed: ${(err as Error).message}`);
      setBusy(false);
    }
  };

  const oidc = config?.oidc;
  const keys = config?.apiKeySignIn ?? true;
  return (
    <main id="main" class="sign-in">
      <h1>Meridian console</h1>
      {completing && (
        <p class="hint" role="status">
          Completing the sign-in…
        </p>
      )}
      {redirectError && (
        <p id="sign-in-redirect-error" class="error" role="alert">
          {redirectError}
        </p>
      )}
      {oidc && (
        <div class="sign-in-redirect">
          <button type="button" onClick={redirect} disabled={busy || completing}>
            Sign in with {oidc.providerName}
          </button>
          {keys && <p class="hint">or with an API key:</p>}
        </div>
      )}
      {keys && (
        <form onSubmit={submit} aria-describedby={error ? "sign-in-error" : undefined}>
          <label for="api-key">API key</label>
          <input
            id="api-key"
            name="api-key"
            type="password"
            autoComplete="off"
            spellcheck={false}
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            aria-invalid={error !== undefined}
          />
          <p class="hint">Kept in this tab only (session storage) and sent with every call to the gateway.</p>
          {error && (
            <p id="sign-in-error" class="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" disabled={busy || completing}>
            Sign in
          </button>
        </form>
      )}
    </main>
  );
}
