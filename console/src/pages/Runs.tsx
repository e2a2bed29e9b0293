import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, when } from "../api/client";
import { StatusBadge } from "../components/StatusBadge";

const STATUSES = ["", "queued", "running", "waiting_approval", "succeeded", "failed", "cancelled"];

/** Runs, filtered and paged by the server. */
export function Runs() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const type = params.get("type") ?? "";
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const runs = useQuery({
    queryKey: ["runs", status, type, cursor],
    queryFn: async () =>
      unwrap(
        await api.GET("/runs", {
          params: {
            query: {
              limit: 50,
              ...(status ? { status } : {}),
              ...(type ? { type } : {}),
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
