import { useMemo, useState } from "react";
import { LineCounter, parse, parseDocument } from "yaml";
import { useNavigate } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, unwrap, when } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";
import { WorkflowGraph } from "../components/WorkflowGraph";

/** The line of `source` a problem's path (`steps[2].depends_on`) points at, if it exists. */
export function lineOf(source: string, path: string): number | null {
  const segments = path
    .replace(/^workflow\./, "")
    .split(/\.|\[(\d+)\]/)
    .filter((s) => s !== undefined && s !== "")
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const counter = new LineCounter();
  const doc = parseDocument(source, { lineCounter: counter });
  for (let n = segments.length; n > 0; n--) {
    const node = doc.getIn(segments.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return counter.linePos(node.range[0]).line;
  }
  return null;
}

const EXAMPLE = `engine: dag
name: review
description: A draft and its review.
inputs:
  topic: What to write about.
steps:
  - id: draft
    agent: cto
    prompt: "Draft a note about {{ inputs.topic }}."
  - id: review
    agent: ceo
    depends_on: [draft]
    prompt: "Review: {{ steps.draft.output }}"
`;

/** Saved workflows and their versions; an editor that saves a new version (every problem
 * shown at its path) and starts runs. */
export function Workflows({ me }: { me: Me }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const list = useQuery({
    queryKey: ["workflows"],
    queryFn: async () => unwrap(await api.GET("/workflows")),
  });
  const [source, setSource] = useState(EXAMPLE);
  const [inputs, setInputs] = useState('{"topic": "pricing"}');
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const editable = can(me, "start_runs");
  const preview = useMemo(() => {
    try {
      return { def: parse(source) as unknown, problem: null };
    } catch (e) {
      return { def: null, problem: e instanceof Error ? e.message : String(e) };
    }
  }, [source]);
  const located =
    error instanceof ApiError
      ? error.fields.map((f) => ({ ...f, line: lineOf(source, f.field) }))
      : [];

  const save = async () => {
    setError(null);
    setSaved(null);
    try {
      const w = unwrap(
        await api.POST("/workflows", {
          body: source as never,
          bodySerializer: (b: unknown) => b as string,
          headers: { "content-type": "application/yaml" },
        }),
      );
      setSaved(`Saved ${w.name} version ${w.version}`);
      await qc.invalidateQueries({ queryKey: ["workflows"] });
    } catch (e) {
      setError(e);
    }
  };
  const run = async (name: string) => {
    setError(null);
    try {
      const parsed: unknown = inputs.trim() ? JSON.parse(inputs) : {};
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new Error("Inputs must be a JSON object.");
      }
      const started = unwrap(
        await api.POST("/workflows/{name}/runs", {
          params: { path: { name } },
          body: { inputs: { ...parsed } },
        }),
      );
      navigate(`/runs/${started.run_id}`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <h1>Workflows</h1>
      <table>
        <thead>
          <tr><th>Name</th><th>Engine</th><th>Version</th><th>Saved</th><th /></tr>
        </thead>
        <tbody>
          {(list.data?.items ?? []).map((w) => (
            <tr key={w.name}>
              <td>
                {w.name}<br /><small>{w.description}</small>
                <Versions name={w.name} onEdit={setSource} />
              </td>
              <td>{w.engine}</td>
              <td>{w.version}</td>
              <td>{when(w.created_at)}</td>
              <td>
                {editable && (
                  <button type="button" onClick={() => run(w.name)}>Run</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editable && (
        <section className="card" aria-labelledby="editor">
          <h2 id="editor">Definition (YAML)</h2>
          <textarea aria-label="Workflow definition" rows={18} spellCheck={false}
            value={source} onChange={(e) => setSource(e.target.value)} />
          <label>
            Inputs for a run (JSON)
            <input value={inputs} onChange={(e) => setInputs(e.target.value)} />
          </label>
          <button type="button" onClick={save}>Save as a new version</button>
          {saved && <p role="status">{saved}</p>}
          {located.length > 0 && (
            <ul className="problems" aria-label="Problems">
              {located.map((p) => (
                <li key={p.field + p.message}>
                  {p.line !== null ? `line ${p.line}: ` : ""}<code>{p.field}</code>: {p.message}
                </li>
              ))}
            </ul>
          )}
          <h3>Preview</h3>
          {preview.problem ? (
            <p className="error-text">Not YAML yet: {preview.problem}</p>
          ) : (
            <WorkflowGraph def={preview.def} />
          )}
        </section>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

/** A workflow's versions, fetched when opened; any of them can be loaded into the editor. */
function Versions({ name, onEdit }: { name: string; onEdit: (source: string) => void }) {
  const [open, setOpen] = useState(false);
  const [version, setVersion] = useState<number | null>(null);
  const detail = useQuery({
    queryKey: ["workflow", name, version],
    queryFn: async () =>
      unwrap(
        await api.GET("/workflows/{name}", {
          params: { path: { name }, query: version ? { version } : {} },
        }),
      ),
    enabled: open,
  });
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Versions</summary>
      <ul>
        {(detail.data?.versions ?? []).map((v) => (
          <li key={v.version}>
            v{v.version} {when(v.created_at)}{" "}
            <button type="button" onClick={() => setVersion(v.version)}>Show</button>
          </li>
        ))}
      </ul>
      {detail.data && (
        <>
          <p>Version {detail.data.version}:</p>
          <pre>{detail.data.source}</pre>
          <button type="button" onClick={() => onEdit(detail.data.source)}>Edit this version</button>
        </>
      )}
    </details>
  );
}
