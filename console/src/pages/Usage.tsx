import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { api, money, unwrap, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";

type Row = Schemas["SummaryRow"];
const GROUPS = ["day", "model", "provider", "actor", "run"] as const;

/** Cost as horizontal bars (SVG, no library: one series, a few dozen rows at most). */
function Bars({ rows }: { rows: Row[] }) {
  const max = Math.max(...rows.map((r) => r.cost_usd), 0);
  const h = 22;
  return (
    <svg role="img" aria-label="Cost per group" width={600} height={rows.length * h + 4}
      viewBox={`0 0 600 ${rows.length * h + 4}`} className="bars">
      {rows.map((r, i) => {
        const w = max > 0 ? (r.cost_usd / max) * 300 : 0;
        return (
          <g key={r.key ?? i} transform={`translate(0 ${i * h})`}>
            <text x={0} y={15} className="bar-label">{(r.key ?? "–").slice(0, 24)}</text>
            <rect x={190} y={4} width={Math.max(w, 1)} height={14} className="bar" />
            <text x={196 + w} y={15} className="bar-value">{money(r.cost_usd)}</text>
          </g>
        );
      })}
    </svg>
  );
}

function csv(rows: Row[], group: string): string {
  const head = [group, "calls", "errors", "prompt_tokens", "completion_tokens", "cost_usd"];
  const esc = (v: unknown) => {
    const s = String(v ?? "");
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [head.join(","), ...rows.map((r) =>
    [r.key, r.calls, r.errors, r.prompt_tokens, r.completion_tokens, r.cost_usd].map(esc).join(","))].join("\n");
}

/** Spend by day, model, provider, persona or run: chart, table and CSV export. */
export function Usage() {
  const [group, setGroup] = useState<(typeof GROUPS)[number]>("day");
  const summary = useQuery({
    queryKey: ["usage", group],
    queryFn: async () =>
      unwrap(await api.GET("/usage/summary", { params: { query: { group_by: group } } })),
    refetchInterval: 10_000,
  });
  const budgets = useQuery({
    queryKey: ["budgets"],
    queryFn: async () => unwrap(await api.GET("/budgets")),
  });
  const rows = summary.data?.rows ?? [];
  const href = `data:text/csv;charset=utf-8,${encodeURIComponent(csv(rows, group))}`;
  return (
    <section>
      <h1>Usage and costs</h1>
      <div className="filters">
        <label>
          Group by
          <select value={group} onChange={(e) => setGroup(e.target.value as typeof group)}>
            {GROUPS.map((g) => <option key={g} value={g}>{g === "actor" ? "persona / actor" : g}</option>)}
          </select>
        </label>
        <a href={href} download={`vorg-usage-by-${group}.csv`}>Export CSV</a>
        <span>Total: <strong>{money(summary.data?.total_cost_usd)}</strong> (last 30 days)</span>
      </div>
      <ErrorNote error={summary.error} />
      {rows.length === 0 ? <p>No model calls in this period.</p> : <Bars rows={rows} />}
      <h2>Budgets</h2>
      {(budgets.data?.items ?? []).length === 0 ? (
        <p>No budgets apply to you.</p>
      ) : (
        <table aria-label="Budgets">
          <thead>
            <tr><th>Budget</th><th>Period</th><th>Spent</th><th>Reserved</th><th>Limit</th><th>Used</th><th>Month-end forecast</th><th>Resets</th></tr>
          </thead>
          <tbody>
            {budgets.data?.items.map((b) => (
              <tr key={`${b.scope}:${b.subject}`}>
                <td>{b.scope} {b.subject}</td><td>{b.period}</td><td>{money(b.spent_usd)}</td>
                <td>{money(b.reserved_usd)}</td><td>{money(b.limit_usd)}</td>
                <td>{Math.round(b.used * 100)}%{b.used >= 0.8 ? " ⚠" : ""}</td>
                <td title="Spend at month end at the burn rate so far">
                  {b.projected_usd == null ? "–" : money(b.projected_usd)}
                  {b.projected_over ? " ⚠ over the limit" : ""}
                </td>
                <td>{b.resets_at ? new Date(b.resets_at).toLocaleString() : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>By {group}</h2>
      <table>
        <thead>
          <tr><th>{group}</th><th>Calls</th><th>Errors</th><th>Tokens in</th><th>Tokens out</th><th>Cost</th></tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={r.key ?? i}>
              <td>{r.key ?? "–"}</td><td>{r.calls}</td><td>{r.errors}</td>
              <td>{r.prompt_tokens}</td><td>{r.completion_tokens}</td><td>{money(r.cost_usd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
