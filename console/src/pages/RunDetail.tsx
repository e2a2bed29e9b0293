import { useState } from "react";
import { useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import Markdown from "../components/Markdown";
import { api, unwrap, when } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";
import { LiveLog } from "../components/LiveLog";
import { StatusBadge } from "../components/StatusBadge";

export function RunDetail({ me }: { me: Me }) {
  const id = Number(useParams().id);
  const qc = useQueryClient();
  const run = useQuery({
    queryKey: ["run", id],
    queryFn: async () => unwrap(await api.GET("/runs/{id}", { params: { path: { id } } })),
    enabled: Number.isFinite(id),
  });
  const checkpoints = useQuery({
    queryKey: ["checkpoints", id],
    queryFn: async () =>
      unwrap(await api.GET("/runs/{id}/checkpoints", { params: { path: { id } } })),
    enabled: run.data?.run_type === "workflow",
  });
  const [error, setError] = useState<unknown>(null);
  if (run.error) return <ErrorNote error={run.error} />;
  if (!run.data) return <p>Loading…</p>;
  const r = run.data;
  const output = (r.output ?? null) as Record<string, unknown> | null;
  const markdown = typeof output?.markdown === "string" ? output.markdown : null;
  const cancel = async () => {
    setError(null);
    try {
      unwrap(await api.POST("/runs/{id}/cancel", { params: { path: { id } } }));
      await qc.invalidateQueries({ queryKey: ["run", id] });
    } catch (e) {
      setError(e);
    }
  };
  const ended = ["succeeded", "failed", "cancelled"].includes(r.status);
  return (
    <article>
      <h1>
        Run #{r.id} {r.summary} <StatusBadge status={r.status} />
      </h1>
      <dl className="facts">
        <dt>Type</dt><dd>{r.run_type}</dd>
        <dt>Created</dt><dd>{when(r.created_at)}</dd>
        <dt>Started</dt><dd>{when(r.started_at)}</dd>
        <dt>Ended</dt><dd>{when(r.completed_at)}</dd>
        <dt>Attempts</dt><dd>{r.attempts}</dd>
        {r.error && (<><dt>Error</dt><dd className="error-text">{r.error}</dd></>)}
      </dl>
      {!ended && can(me, "cancel_runs") && (
        <button type="button" onClick={cancel}>Cancel run</button>
      )}
      <ErrorNote error={error} />
      <h2>Log</h2>
      <LiveLog runId={id} onDone={() => qc.invalidateQueries({ queryKey: ["run", id] })} />
      {markdown && (
        <section aria-labelledby="minutes">
          <h2 id="minutes">Minutes</h2>
          <Markdown text={markdown} />
        </section>
      )}
      {(checkpoints.data?.items.length ?? 0) > 0 && (
        <section aria-labelledby="checkpoints">
          <h2 id="checkpoints">Checkpoints</h2>
          <ol>
            {checkpoints.data?.items.map((c) => (
              <li key={c.steps}>
                <details>
                  <summary>{c.node} → {c.next ?? "END"}</summary>
                  <pre>{JSON.stringify(c.state, null, 2)}</pre>
                </details>
              </li>
            ))}
          </ol>
        </section>
      )}
      {output && !markdown && (
        <section aria-labelledby="output">
          <h2 id="output">Output</h2>
          <pre>{JSON.stringify(output, null, 2)}</pre>
        </section>
      )}
    </article>
  );
}
