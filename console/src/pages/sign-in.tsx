import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { useState } from "preact/hooks";
import { describeError, gatewayTransport } from "../api.js";

/**
 * The key is checked before it is kept: GetCaller answers for any valid key holding status:read, and a valid key
 * without that role is refused with permission_denied (still a valid key: it is kept). Only an unauthenticated
 * answer or no answer keeps the person on this page.
 */
export function SignInPage({ onSignIn }: { onSignIn: (key: string) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const credential = key.trim();
    if (!credential) {
      setError("Paste an API key (mrd_…) or an OIDC access token.");
      return;
    }
    setBusy(true);
    setError(undefined);
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

  return (
    <main id="main" class="sign-in">
      <h1>Meridian console</h1>
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
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
