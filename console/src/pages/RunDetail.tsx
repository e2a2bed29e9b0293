import { useMemo, useState } from "react";
import { parse } from "yaml";
import { useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import Markdown from "../components/Markdown";
import { api, money, unwrap, when, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";
import { LiveLog, type Line } from "../components/LiveLog";
import { WorkflowGraph, type StepState } from "../components/WorkflowGraph";
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
      unwrap(
        await api.GET("/runs/{id}/checkpoints", {
          params: { path: { id }, query: { limit: 50 } },
        }),
      ),
    enabled: run.data?.run_type === "workflow",
  });
  const [error, setError] = useState<unknown>(null);
  const [lines, setLines] = useState<Line[]>([]);
  const definition = useMemo(() => {
    const input = run.data?.input;
    const source = input && "source" in input ? input.source : undefined;
    if (run.data?.run_type !== "workflow" || typeof source !== "string") return null;
    try {
      const def: unknown = parse(source);
      return def;
    } catch {
      return null;
    }
  }, [run.data]);
  const states = useMemo(() => stepStates(lines), [lines]);
  const costs = useMemo(() => costsOf(lines), [lines]);
  if (run.error) return <ErrorNote error={run.error} />;
  if (!run.data) return <p>Loading…</p>;
  const r = run.data;
  const output = r.output ?? null;
  const markdown = output && "markdown" in output ? output.markdown : null;
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
      {r.linear_issues.length > 0 && (
        <section aria-labelledby="linear">
          <h2 id="linear">Linear issues filed by this run</h2>
          <ul>
            {r.linear_issues.map((l) => (
              <li key={l.linear_issue_id}>
                <a href={l.url} target="_blank" rel="noreferrer">{l.identifier}</a> {l.title}
              </li>
            ))}
          </ul>
        </section>
      )}
      <h2>Log</h2>
      {definition !== null && (
        <section aria-labelledby="graph">
          <h2 id="graph">Workflow</h2>
          <WorkflowGraph def={definition} states={states} />
        </section>
      )}
      <LiveLog runId={id} onLines={setLines}
        onDone={() => qc.invalidateQueries({ queryKey: ["run", id] })} />
      {costs.length > 0 && (
        <section aria-labelledby="costs">
          <h2 id="costs">Cost and tokens</h2>
          <table>
            <thead><tr><th>Step</th><th>Persona</th><th>Calls</th><th>Tokens</th><th>Cost</th></tr></thead>
            <tbody>
              {costs.map((c) => (
                <tr key={`${c.step}|${c.persona}`}>
                  <td>{c.step}</td><td>{c.persona}</td><td>{c.calls}</td><td>{c.tokens}</td>
                  <td>{money(c.micro / 1e6)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <Outcome output={output} />
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

/** Each step's latest state, from the engine's `[step] …` log lines. */
function stepStates(lines: Line[]): Map<string, StepState> {
  const states = new Map<string, StepState>();
  for (const l of lines) {
    const m = /^\[([^\]]+)\] (.*)$/.exec(l.text);
    if (!m || m[1] === "run") continue;
    const [, step = "", rest = ""] = m;
    if (/^started/.test(rest)) states.set(step, "running");
    else if (/^(succeeded|next:|approved|rejected|done)/.test(rest)) states.set(step, "succeeded");
    else if (/^(failed|dependency .* failed|timed out)/.test(rest)) states.set(step, "failed");
  }
  return states;
}

type Cost = { step: string; persona: string; calls: number; tokens: number; micro: number };

/** Model calls per step and persona, from the `spoke` lines' fields. */
function costsOf(lines: Line[]): Cost[] {
  const by = new Map<string, Cost>();
  for (const l of lines) {
    const f = l.fields;
    if (!f || typeof f.cost_micro_usd !== "number") continue;
    const step = typeof f.step === "string" ? f.step : "–";
    const persona = typeof f.persona === "string" ? f.persona : "–";
    const key = `${step}|${persona}`;
    const c = by.get(key) ?? { step, persona, calls: 0, tokens: 0, micro: 0 };
    c.calls += 1;
    c.tokens += typeof f.tokens === "number" ? f.tokens : 0;
    c.micro += f.cost_micro_usd;
    by.set(key, c);
  }
  return [...by.values()];
}

type Task = { id: string; agent?: string; revisions: number; output?: string; error?: string };
type Message = { speaker: string; content: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** A crew's tasks, as far as they have the fields shown. */
function tasksOf(v: unknown): Task[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.flatMap((t: unknown) =>
    isObject(t) && typeof t.id === "string"
      ? [{
          id: t.id,
          agent: text(t.agent),
          revisions: typeof t.revisions === "number" ? t.revisions : 0,
          output: text(t.output),
          error: text(t.error),
        }]
      : [],
  );
}

/** A chat's transcript, as far as its messages have a speaker and content. */
function messagesOf(v: unknown): Message[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.flatMap((m: unknown) =>
    isObject(m) && typeof m.speaker === "string" && typeof m.content === "string"
      ? [{ speaker: m.speaker, content: m.content }]
      : [],
  );
}

/** A crew's tasks (who did each, how often it was sent back) or a chat's transcript. */
function Outcome({ output }: { output: Schemas["RunOutput"] | null }) {
  if (!output || !("outcome" in output)) return null;
  const engine = output.outcome.engine;
  const tasks = tasksOf(output.outcome.tasks);
  const transcript = messagesOf(output.outcome.transcript);
  const outcome = { engine, tasks, transcript };
  if (outcome.engine === "crew" && outcome.tasks) {
    return (
      <section aria-labelledby="crew">
        <h2 id="crew">Crew tasks</h2>
        <table>
          <thead><tr><th>Task</th><th>Done by</th><th>Sent back</th><th>Result</th></tr></thead>
          <tbody>
            {outcome.tasks.map((t) => (
              <tr key={t.id}>
                <td>{t.id}</td><td>{t.agent ?? "–"}</td><td>{t.revisions}</td>
                <td>{t.error ? <span className="error-text">{t.error}</span> : t.output}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    );
  }
  if (outcome.engine === "chat" && outcome.transcript) {
    return (
      <section aria-labelledby="chat">
        <h2 id="chat">Transcript</h2>
        <ol className="transcript">
          {outcome.transcript.map((m, i) => (
            <li key={i}><strong>{m.speaker}</strong>: {m.content}</li>
          ))}
        </ol>
      </section>
    );
  }
  return null;
}
