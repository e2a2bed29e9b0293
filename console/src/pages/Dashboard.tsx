import { Link } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { api, money, unwrap, when } from "../api/client";
import { can, type Me } from "../api/hooks";
import { StatusBadge } from "../components/StatusBadge";

/** What needs attention: runs today, spend against budgets, approvals waiting for me,
 * recent minutes, failing runs. */
export function Dashboard({ me }: { me: Me }) {
  const runs = useQuery({
    queryKey: ["runs", "dashboard"],
    queryFn: async () => unwrap(await api.GET("/runs", { params: { query: { limit: 200 } } })),
    refetchInterval: 5000,
  });
  const failing = useQuery({
    queryKey: ["runs", "failed"],
    queryFn: async () =>
      unwrap(await api.GET("/runs", { params: { query: { status: "failed", limit: 5 } } })),
  });
  const approvals = useQuery({
    queryKey: ["approvals", "pending"],
    queryFn: async () =>
      unwrap(await api.GET("/approvals", { params: { query: { status: "pending", limit: 50 } } })),
  });
  const minutes = useQuery({
    queryKey: ["minutes"],
    queryFn: async () => unwrap(await api.GET("/ops/minutes")),
  });
  const daily = useQuery({
    queryKey: ["usage", "day"],
    queryFn: async () =>
      unwrap(await api.GET("/usage/summary", { params: { query: { group_by: "day" } } })),
    enabled: can(me, "view_usage"),
  });
  const budgets = useQuery({
    queryKey: ["budgets"],
    queryFn: async () => unwrap(await api.GET("/budgets")),
    enabled: can(me, "view_usage"),
  });

  const today = new Date().toDateString();
  const counts = new Map<string, number>();
  for (const r of runs.data?.items ?? []) {
    if (new Date(r.created_at).toDateString() === today) {
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
  }
  const mine = (approvals.data?.items ?? []).filter(
    (a) => a.requested_by !== me.id && can(me, "decide_approvals"),
  );

  return (
    <div className="grid">
      <section aria-labelledby="runs-today">
        <h2 id="runs-today">Runs today</h2>
        {counts.size === 0 ? (
          <p>No runs yet today.</p>
        ) : (
          <ul className="counts">
            {[...counts].map(([s, n]) => (
              <li key={s}>
                <StatusBadge status={s} /> {n}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="spend">
        <h2 id="spend">Spend against budgets</h2>
        {(budgets.data?.items ?? []).length === 0 ? (
          <p>No budgets apply to you.</p>
        ) : (
          <table>
            <thead>
              <tr><th>Budget</th><th>Spent</th><th>Limit</th><th>Used</th></tr>
            </thead>
            <tbody>
              {budgets.data?.items.map((b) => (
                <tr key={`${b.scope}:${b.subject}`}>
                  <td>{b.scope} {b.subject} ({b.period})</td>
                  <td>{money(b.spent_usd)}</td>
                  <td>{money(b.limit_usd)}</td>
                  <td>
                    <meter min={0} max={1} value={b.used} aria-label={`${b.scope} used`} />{" "}
                    {Math.round(b.used * 100)}%
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {daily.data && <BurnRate rows={daily.data.rows} limit={monthLimit(budgets.data?.items)} />}
      <section aria-labelledby="waiting">
        <h2 id="waiting">Approvals waiting for you</h2>
        {mine.length === 0 ? (
          <p>Nothing waits for you.</p>
        ) : (
          <ul>
            {mine.slice(0, 5).map((a) => (
              <li key={a.id}>
                <Link to="/approvals">{a.description}</Link> — {money(a.amount_usd)} ({a.tier})
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="recent-minutes">
        <h2 id="recent-minutes">Recent minutes</h2>
        <ul>
          {(minutes.data ?? []).slice(0, 5).map((m) => (
            <li key={m.id}>
              {m.run_id ? <Link to={`/runs/${m.run_id}`}>{m.name}</Link> : m.name}{" "}
              <small>{when(m.created_at)}</small>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="failing">
        <h2 id="failing">Failing runs</h2>
        <ul>
          {(failing.data?.items ?? []).map((r) => (
            <li key={r.id}>
              <Link to={`/runs/${r.id}`}>#{r.id} {r.summary ?? r.run_type}</Link>: {r.error}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

type Budget = { scope: string; period: string; limit_usd: number };

/** The organization's monthly budget, if one applies. */
function monthLimit(items: Budget[] | undefined): number | null {
  const b = (items ?? []).find((x) => x.period === "month");
  return b ? b.limit_usd : null;
}

/** Spend this month, day by day (cumulative), with the month-end projection at the current
 * burn rate and the monthly budget as a line. */
export function BurnRate({ rows, limit }: { rows: { key?: string | null; cost_usd: number }[]; limit: number | null }) {
  const now = new Date();
  const month = now.toISOString().slice(0, 7);
  // Usage days are UTC days.
  const days = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
  const today = now.getUTCDate();
  const perDay = new Array<number>(days).fill(0);
  for (const r of rows) {
    if (r.key?.startsWith(month)) {
      const d = Number(r.key.slice(8, 10));
      if (d >= 1 && d <= days) perDay[d - 1] = (perDay[d - 1] ?? 0) + r.cost_usd;
    }
  }
  let sum = 0;
  const cumulative = perDay.slice(0, today).map((c) => (sum += c));
  const spent = sum;
  const projected = today > 0 ? (spent / today) * days : 0;
  const top = Math.max(projected, limit ?? 0, spent, 0.0001);
  const W = 300;
  const H = 120;
  const x = (d: number) => (d / days) * W;
  const y = (v: number) => H - (v / top) * H;
  const path = cumulative.map((v, i) => `${i ? "L" : "M"}${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  return (
    <section aria-labelledby="burn">
      <h2 id="burn">Spend this month</h2>
      <p>
        {money(spent)} so far; at this rate {money(projected)} by month end
        {limit !== null && <> against a budget of {money(limit)}</>}.
      </p>
      <svg role="img" aria-label="Cumulative spend this month with projection" viewBox={`0 0 ${W} ${H}`}
        width="100%" height={H} className="burn">
        {limit !== null && <line x1={0} x2={W} y1={y(limit)} y2={y(limit)} className="burn-limit" />}
        <line x1={x(today)} y1={y(spent)} x2={W} y2={y(projected)} className="burn-projection" />
        {path && <path d={path} className="burn-line" />}
      </svg>
    </section>
  );
}
