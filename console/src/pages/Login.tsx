import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";

/** Login, or on a fresh installation the creation of the admin account. */
export function Login() {
  const qc = useQueryClient();
  const status = useQuery({
    queryKey: ["auth-status"],
    queryFn: async () => unwrap(await api.GET("/auth/status")),
  });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const setup = status.data?.setup_required ?? false;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (setup) unwrap(await api.POST("/auth/register", { body: { email, password } }));
      unwrap(await api.POST("/auth/login", { body: { email, password, cookie: true } }));
      await qc.invalidateQueries();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <h1>{setup ? "Create the admin account" : "Log in to vorg"}</h1>
      {setup && <p>No account exists yet: the first one administers this organization.</p>}
      <form onSubmit={submit}>
        <label>
          E-mail
          <input type="email" autoComplete="username" required value={email}
            onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input type="password" autoComplete={setup ? "new-password" : "current-password"}
            required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {setup ? "Create and log in" : "Log in"}
        </button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}
