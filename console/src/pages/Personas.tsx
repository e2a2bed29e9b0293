import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, unwrap, when, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

type Node = Schemas["ChartNode"];

function Tree({ nodes }: { nodes: Node[] }) {
  return (
    <ul className="tree">
      {nodes.map((n) => (
        <li key={n.id}>
          <Link to={`/personas/${encodeURIComponent(n.id)}`}>{n.name}</Link>
          {n.title ? ` — ${n.title}` : ""} <small>{n.department}</small>
          {n.reports.length > 0 && <Tree nodes={n.reports} />}
        </li>
      ))}
    </ul>
  );
}

/** The organization as a tree from reporting lines. */
export function OrgChart() {
  const chart = useQuery({
    queryKey: ["org-chart"],
    queryFn: async () => unwrap(await api.GET("/org/chart")),
  });
  return (
    <section>
      <h1>Organization ({chart.data?.count ?? "…"} personas)</h1>
      <ErrorNote error={chart.error} />
      <Tree nodes={chart.data?.roots ?? []} />
    </section>
  );
}

type Doc = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? v.map(String).join(", ") : "");
const split = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

/** Fields the editor shows; the rest of the document is kept as it is. */
const FIELDS = [
  ["name", "Name", "text"],
  ["title", "Title", "text"],
  ["department", "Department", "text"],
  ["reports_to", "Reports to (persona id)", "text"],
  ["skills", "Skills (comma-separated)", "list"],
  ["tools", "Tools (comma-separated)", "list"],
  ["goals", "Goals (comma-separated)", "list"],
] as const;

/** A persona: its editor (every schema problem shown at its field) and its versions. */
export function PersonaDetail({ me }: { me: Me }) {
  const id = decodeURIComponent(useParams().id ?? "");
  const qc = useQueryClient();
  const persona = useQuery({
    queryKey: ["persona", id],
    queryFn: async () => unwrap(await api.GET("/personas/{id}", { params: { path: { id } } })),
  });
  const history = useQuery({
    queryKey: ["persona-history", id],
    queryFn: async () =>
      unwrap(await api.GET("/personas/{id}/history", { params: { path: { id } } })),
  });
  const [form, setForm] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const doc: Doc | undefined = persona.data?.persona;
  useEffect(() => {
    if (!doc) return;
    setForm(
      Object.fromEntries(
        FIELDS.map(([k, , kind]) => [k, kind === "list" ? list(doc[k]) : String(doc[k] ?? "")]),
      ),
    );
  }, [doc]);
  if (persona.error) return <ErrorNote error={persona.error} />;
  if (!doc) return <p>Loading…</p>;
  const fieldErrors = error instanceof ApiError ? error.fields : [];
  const errorsAt = (k: string) =>
    fieldErrors.filter((f) => f.field === k || f.field.startsWith(`${k}[`) || f.field.startsWith(`${k}.`));
  const editable = can(me, "manage_personas");

  const save = async () => {
    setError(null);
    setSaved(null);
    const next: Doc = { ...doc };
    for (const [k, , kind] of FIELDS) {
      const v = (form[k] ?? "").trim();
      if (kind === "list") next[k] = split(v);
      else if (v === "") delete next[k];
      else next[k] = v;
    }
    try {
      const row = unwrap(
        await api.PUT("/personas/{id}", { params: { path: { id } }, body: next }),
      );
      setSaved(`Saved version ${row.version}`);
      await qc.invalidateQueries({ queryKey: ["persona", id] });
      await qc.invalidateQueries({ queryKey: ["persona-history", id] });
      await qc.invalidateQueries({ queryKey: ["org-chart"] });
    } catch (e) {
      setError(e);
    }
  };
  const shown = new Set<string>(FIELDS.map(([k]) => k));
  const elsewhere = fieldErrors.filter((f) => !shown.has(f.field.split(/[.[]/)[0] ?? ""));
  return (
    <article>
      <h1>{String(doc.name ?? id)} <small>{id}</small></h1>
      <form className="card" onSubmit={(e) => { e.preventDefault(); void save(); }}>
        {FIELDS.map(([k, label]) => (
          <label key={k}>
            {label}
            <input value={form[k] ?? ""} disabled={!editable}
              aria-invalid={errorsAt(k).length > 0}
              aria-describedby={errorsAt(k).length ? `err-${k}` : undefined}
              onChange={(e) => setForm({ ...form, [k]: e.target.value })} />
            {errorsAt(k).length > 0 && (
              <span id={`err-${k}`} className="field-error">
                {errorsAt(k).map((f) => `${f.field}: ${f.message}`).join("; ")}
              </span>
            )}
          </label>
        ))}
        {editable && <button type="submit">Save</button>}
        {saved && <p role="status">{saved}</p>}
        {error !== null && (elsewhere.length > 0 || fieldErrors.length === 0) && (
          <ErrorNote error={error} />
        )}
      </form>
      <section aria-labelledby="versions">
        <h2 id="versions">Versions</h2>
        <ol reversed>
          {(history.data?.items ?? []).map((v) => (
            <li key={v.version}>
              <details>
                <summary>
                  v{v.version} by {v.author}, {when(v.created_at)} — {v.changes.length} change(s)
                </summary>
                <ul className="diff">
                  {v.changes.map((c, i) => (
                    <li key={i}><code>{JSON.stringify(c)}</code></li>
                  ))}
                </ul>
              </details>
            </li>
          ))}
        </ol>
      </section>
    </article>
  );
}
