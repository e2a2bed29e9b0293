import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, check, unwrap, when, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

const ROLES: Schemas["Role"][] = ["admin", "approver", "engineer", "growth", "viewer"];

/** API tokens (the secret shown once), users and their roles, the audit log. */
export function Admin({ me }: { me: Me }) {
  return (
    <div>
      <h1>Admin</h1>
      <Tokens />
      {can(me, "manage_users") && <Users me={me} />}
      {can(me, "view_audit") && <Audit />}
    </div>
  );
}

function Tokens() {
  const qc = useQueryClient();
  const tokens = useQuery({
    queryKey: ["tokens"],
    queryFn: async () => unwrap(await api.GET("/auth/tokens")),
  });
  const [name, setName] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<number | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const t = unwrap(await api.POST("/auth/tokens", { body: { name } }));
      setSecret(t.token);
      setName("");
      await qc.invalidateQueries({ queryKey: ["tokens"] });
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (id: number) => {
    setError(null);
    try {
      check(await api.DELETE("/auth/tokens/{id}", { params: { path: { id } } }));
      await qc.invalidateQueries({ queryKey: ["tokens"] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="tokens">
      <h2 id="tokens">API tokens</h2>
      <form onSubmit={create} className="filters">
        <label>
          Token name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <button type="submit">Create token</button>
      </form>
      {secret && (
        <p role="status" className="secret">
          New token (shown once, copy it now): <code>{secret}</code>
        </p>
      )}
      <ErrorNote error={error} />
      <table>
        <thead>
          <tr><th>Name</th><th>Prefix</th><th>Roles</th><th>Limits</th><th>Created</th><th>Last used</th><th>State</th><th /></tr>
        </thead>
        <tbody>
          {(tokens.data?.items ?? []).map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td><td><code>{t.prefix}</code></td><td>{t.roles.join(", ")}</td>
              <td>{limitsSummary(t.limits)}</td>
              <td>{when(t.created_at)}</td><td>{when(t.last_used_at)}</td>
              <td>{t.revoked_at ? `revoked ${when(t.revoked_at)}` : "active"}</td>
              <td>
                {!t.revoked_at && (
                  <>
                    <button type="button" aria-label={`Limits of ${t.name}`} onClick={() => setEditing(t.id)}>
                      Limits
                    </button>{" "}
                    <button type="button" aria-label={`Revoke ${t.name}`} onClick={() => revoke(t.id)}>
                      Revoke
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing !== null && <TokenLimits id={editing} onClose={() => setEditing(null)} />}
    </section>
  );
}

type Limits = Schemas["LimitsBody"];

/** A token's limits in a few words, e.g. "60 req/min, $5/day". */
function limitsSummary(l: Limits): string {
  const parts: string[] = [];
  if (l.models) parts.push(`models ${l.models.join(", ")}`);
  if (l.daily_budget_usd != null) parts.push(`$${l.daily_budget_usd}/day`);
  if (l.monthly_budget_usd != null) parts.push(`$${l.monthly_budget_usd}/month`);
  if (l.requests_per_minute != null) parts.push(`${l.requests_per_minute} req/min`);
  if (l.tokens_per_minute != null) parts.push(`${l.tokens_per_minute} tokens/min`);
  if (l.allowed_ips) parts.push(`from ${l.allowed_ips.join(", ")}`);
  return parts.length ? parts.join("; ") : "none";
}

const list = (text: string): string[] | null => {
  const items = text.split(",").map((s) => s.trim()).filter(Boolean);
  return items.length ? items : null;
};
const num = (text: string): number | null => (text.trim() === "" ? null : Number(text));

/** Edits one token's limits (empty: no limit) and shows what it spent. */
function TokenLimits({ id, onClose }: { id: number; onClose: () => void }) {
  const qc = useQueryClient();
  const detail = useQuery({
    queryKey: ["token", id],
    queryFn: async () => unwrap(await api.GET("/auth/tokens/{id}", { params: { path: { id } } })),
  });
  const [error, setError] = useState<unknown>(null);
  if (detail.isPending) return <p>Loading the token…</p>;
  if (detail.isError) return <ErrorNote error={detail.error} />;
  const t = detail.data;
  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setError(null);
    const f = new FormData(e.currentTarget);
    const text = (k: string) => String(f.get(k) ?? "");
    const limits: Limits = {
      models: list(text("models")),
      daily_budget_usd: num(text("daily")),
      monthly_budget_usd: num(text("monthly")),
      requests_per_minute: num(text("rpm")),
      tokens_per_minute: num(text("tpm")),
      allowed_ips: list(text("ips")),
    };
    try {
      unwrap(await api.PATCH("/auth/tokens/{id}", { params: { path: { id } }, body: { limits } }));
      await qc.invalidateQueries({ queryKey: ["tokens"] });
      await qc.invalidateQueries({ queryKey: ["token", id] });
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  const l = t.limits;
  return (
    <form onSubmit={save} aria-label={`Limits of token ${t.name}`} className="card">
      <h3>Limits of {t.name}</h3>
      <p>
        Spent today ${t.spend.today_usd}, this month ${t.spend.month_usd}, in all ${t.spend.total_usd}
        {t.spend.daily_headroom_usd != null && `; $${t.spend.daily_headroom_usd} left today`}.
        Permissions: {t.permissions.join(", ")}.
      </p>
      <label>Models (comma-separated patterns)<input name="models" defaultValue={l.models?.join(", ") ?? ""} /></label>
      <label>Daily budget (USD)<input name="daily" type="number" step="any" min="0" defaultValue={l.daily_budget_usd ?? ""} /></label>
      <label>Monthly budget (USD)<input name="monthly" type="number" step="any" min="0" defaultValue={l.monthly_budget_usd ?? ""} /></label>
      <label>Requests per minute<input name="rpm" type="number" min="1" defaultValue={l.requests_per_minute ?? ""} /></label>
      <label>Model tokens per minute<input name="tpm" type="number" min="1" defaultValue={l.tokens_per_minute ?? ""} /></label>
      <label>Allowed addresses (comma-separated IPs or CIDR ranges)<input name="ips" defaultValue={l.allowed_ips?.join(", ") ?? ""} /></label>
      <ErrorNote error={error} />
      <button type="submit">Save limits</button>{" "}
      <button type="button" onClick={onClose}>Cancel</button>
    </form>
  );
}

function Users({ me }: { me: Me }) {
  const qc = useQueryClient();
  const users = useQuery({
    queryKey: ["users"],
    queryFn: async () => unwrap(await api.GET("/users", { params: { query: { limit: 200 } } })),
  });
  const [error, setError] = useState<unknown>(null);
  const toggle = async (id: number, role: string, has: boolean) => {
    setError(null);
    try {
      if (has) {
        unwrap(await api.DELETE("/users/{id}/roles/{role}", { params: { path: { id, role } } }));
      } else {
        unwrap(await api.POST("/users/{id}/roles", { params: { path: { id } }, body: { role } }));
      }
      await qc.invalidateQueries({ queryKey: ["users"] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="users">
      <h2 id="users">Users and roles</h2>
      <ErrorNote error={error} />
      <table>
        <thead>
          <tr><th>User</th>{ROLES.map((r) => <th key={r}>{r}</th>)}<th>Last login</th></tr>
        </thead>
        <tbody>
          {(users.data?.items ?? []).map((u) => (
            <tr key={u.id}>
              <td>{u.email}{u.id === me.id ? " (you)" : ""}</td>
              {ROLES.map((r) => {
                const has = u.roles.includes(r);
                return (
                  <td key={r}>
                    <input type="checkbox" checked={has} aria-label={`${u.email} is ${r}`}
                      onChange={() => toggle(u.id, r, has)} />
                  </td>
                );
              })}
              <td>{when(u.last_login_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Audit() {
  const audit = useQuery({
    queryKey: ["audit"],
    queryFn: async () => unwrap(await api.GET("/audit", { params: { query: { limit: 100 } } })),
  });
  return (
    <section aria-labelledby="audit">
      <h2 id="audit">Audit log</h2>
      <table>
        <thead>
          <tr><th>When</th><th>Who</th><th>Action</th><th>Target</th></tr>
        </thead>
        <tbody>
          {(audit.data?.items ?? []).map((a) => (
            <tr key={a.id}>
              <td>{when(a.created_at)}</td><td>{a.actor}</td><td>{a.action}</td><td>{a.target}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
