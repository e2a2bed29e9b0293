import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, when } from "../api/client";
import { StatusBadge } from "../components/StatusBadge";
import type { Me } from "../api/hooks";

const STATUSES = ["", "queued", "running", "waiting_approval", "succeeded", "failed", "cancelled"];

/** The start of a local calendar day (`YYYY-MM-DD`), as RFC 3339. */
function dayStart(day: string, plus = 0): string {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + plus).toISOString();
}

/** Runs, filtered (status, type, who, dates) and paged by the server. */
export function Runs({ me }: { me: Me }) {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const type = params.get("type") ?? "";
  const mine = params.get("mine") === "1";
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const runs = useQuery({
    queryKey: ["runs", status, type, mine, from, to, cursor],
    queryFn: async () =>
      unwrap(
        await api.GET("/runs", {
          params: {
            query: {
              limit: 50,
              ...(status ? { status } : {}),
              ...(type ? { type } : {}),
              ...(mine ? { requested_by: me.id } : {}),
              ...(from ? { from: dayStart(from) } : {}),
              ...(to ? { to: dayStart(to, 1) } : {}),
              ...(cursor ? { cursor } : {}),
            },
          },
        }),
      ),
    refetchInterval: 5000,
  });
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setCursors([]);
    setParams(next);
  };
  return (
    <section>
      <h1>Runs</h1>
      <div className="filters">
        <label>
          Status
          <select value={status} onChange={(e) => set("status", e.target.value)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>{s || "any"}</option>
            ))}
          </select>
        </label>
        <label>
          Type
          <input value={type} placeholder="meeting, workflow, …"
            onChange={(e) => set("type", e.target.value.trim())} />
        </label>
        <label className="inline">
          <input type="checkbox" checked={mine} onChange={(e) => set("mine", e.target.checked ? "1" : "")} />
          Started by me
        </label>
        <label>
          From
          <input type="date" value={from} onChange={(e) => set("from", e.target.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} onChange={(e) => set("to", e.target.value)} />
        </label>
      </div>
      <table>
        <thead>
          <tr><th>Run</th><th>Type</th><th>Status</th><th>Created</th><th>Error</th></tr>
        </thead>
        <tbody>
          {(runs.data?.items ?? []).map((r) => (
            <tr key={r.id}>
              <td><Link to={`/runs/${r.id}`}>#{r.id} {r.summary}</Link></td>
              <td>{r.run_type}</td>
              <td><StatusBadge status={r.status} /></td>
              <td>{when(r.created_at)}</td>
              <td>{r.error}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.data && runs.data.items.length === 0 && <p>No runs match.</p>}
      <div className="pager">
        <button type="button" disabled={cursors.length === 0}
          onClick={() => setCursors(cursors.slice(0, -1))}>Newer</button>
        <button type="button" disabled={!runs.data?.next_cursor}
          onClick={() => runs.data?.next_cursor && setCursors([...cursors, runs.data.next_cursor])}>
          Older
        </button>
      </div>
    </section>
  );
}
