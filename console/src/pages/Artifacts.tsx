import { lazy, Suspense, useState } from "react";
import { Link, useParams } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, when } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";

const Markdown = lazy(() => import("../components/Markdown"));

/** Artifacts: full-text search or the newest, by kind. */
export function Artifacts() {
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [kind, setKind] = useState("");
  const list = useQuery({
    queryKey: ["artifacts", kind],
    queryFn: async () =>
      unwrap(await api.GET("/artifacts", { params: { query: { limit: 50, ...(kind ? { kind } : {}) } } })),
    enabled: !query,
  });
  const found = useQuery({
    queryKey: ["artifact-search", query],
    queryFn: async () =>
      unwrap(await api.GET("/artifacts/search", { params: { query: { q: query, limit: 50 } } })),
    enabled: !!query,
  });
  const items = query ? (found.data?.items ?? []) : (list.data?.items ?? []);
  return (
    <section>
      <h1>Artifacts</h1>
      <form className="filters" role="search"
        onSubmit={(e) => { e.preventDefault(); setQuery(q.trim()); }}>
        <label>
          Search
          <input type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </label>
        <button type="submit">Search</button>
        <label>
          Kind
          <select value={kind} onChange={(e) => { setKind(e.target.value); setQuery(""); setQ(""); }}>
            {["", "minutes", "minutes_json", "hiring_plan", "decision"].map((k) => (
              <option key={k} value={k}>{k || "any"}</option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote error={found.error ?? list.error} />
      <table>
        <thead><tr><th>Name</th><th>Kind</th><th>Run</th><th>Created</th><th>Match</th></tr></thead>
        <tbody>
          {items.map((a) => (
            <tr key={a.id}>
              <td><Link to={`/artifacts/${a.id}`}>{a.name}</Link></td>
              <td>{a.kind}</td>
              <td>{a.run_id ? <Link to={`/runs/${a.run_id}`}>#{a.run_id}</Link> : "–"}</td>
              <td>{when(a.created_at)}</td>
              <td>{"snippet" in a ? String(a.snippet) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** One artifact: markdown rendered, JSON pretty-printed, other types downloadable. */
export function ArtifactDetail() {
  const id = Number(useParams().id);
  const meta = useQuery({
    queryKey: ["artifact", id],
    queryFn: async () => unwrap(await api.GET("/artifacts/{id}", { params: { path: { id } } })),
  });
  const content = useQuery({
    queryKey: ["artifact-content", id],
    queryFn: async () => {
      const res = await fetch(`/artifacts/${id}/content`, { credentials: "same-origin" });
      if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
      return res.text();
    },
    enabled: !!meta.data && /markdown|json|text/.test(meta.data.content_type),
  });
  if (meta.error) return <ErrorNote error={meta.error} />;
  const a = meta.data;
  if (!a) return <p>Loading…</p>;
  let body = null;
  if (content.data !== undefined) {
    if (a.content_type.includes("markdown")) {
      body = <Suspense fallback={<p>Loading…</p>}><Markdown text={content.data} /></Suspense>;
    } else if (a.content_type.includes("json")) {
      let pretty = content.data;
      try { pretty = JSON.stringify(JSON.parse(content.data), null, 2); } catch { /* as is */ }
      body = <pre>{pretty}</pre>;
    } else {
      body = <pre>{content.data}</pre>;
    }
  }
  return (
    <article>
      <h1>{a.name}</h1>
      <p>
        {a.kind} · {a.content_type} · {a.size} bytes · {when(a.created_at)}{" "}
        {a.run_id && <Link to={`/runs/${a.run_id}`}>run #{a.run_id}</Link>} ·{" "}
        <a href={`/artifacts/${a.id}/content`} download={a.name}>Download</a>
      </p>
      <ErrorNote error={content.error} />
      {body}
    </article>
  );
}
