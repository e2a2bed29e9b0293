import { lazy, Suspense, useEffect, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, when } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

const Markdown = lazy(() => import("../components/Markdown"));

/** The constitution (rendered), the policies in force with an editor validated by the
 * server before it takes effect, and every version with rollback. */
export function Governance({ me }: { me: Me }) {
  const qc = useQueryClient();
  const constitution = useQuery({
    queryKey: ["constitution"],
    queryFn: async () => unwrap(await api.GET("/governance/constitution")),
  });
  const policies = useQuery({
    queryKey: ["policies"],
    queryFn: async () => unwrap(await api.GET("/governance/policies")),
  });
  const history = useQuery({
    queryKey: ["policies-history"],
    queryFn: async () => unwrap(await api.GET("/governance/policies/history")),
  });
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    if (policies.data) setText(policies.data.text);
  }, [policies.data]);
  const editable = can(me, "manage_governance");
  const refresh = async () => {
    await qc.invalidateQueries({ queryKey: ["policies"] });
    await qc.invalidateQueries({ queryKey: ["policies-history"] });
  };
  const save = async () => {
    setError(null);
    setSaved(null);
    try {
      const v = unwrap(
        await api.PUT("/governance/policies", {
          body: text as never,
          bodySerializer: (b: unknown) => b as string,
          headers: { "content-type": "application/yaml" },
        }),
      );
      setSaved(`Version ${v.version} is in force`);
      await refresh();
    } catch (e) {
      setError(e);
    }
  };
  const rollback = async (version: number) => {
    setError(null);
    try {
      const v = unwrap(await api.POST("/governance/policies/rollback", { body: { version } }));
      setSaved(`Rolled back: version ${v.version} is in force`);
      await refresh();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <h1>Governance</h1>
      <section aria-labelledby="constitution">
        <h2 id="constitution">Constitution</h2>
        <Suspense fallback={<p>Loading…</p>}>
          {constitution.data && <Markdown text={constitution.data.markdown} />}
        </Suspense>
      </section>
      <section aria-labelledby="policies">
        <h2 id="policies">
          Policies (version {policies.data?.version ?? "…"}, {policies.data?.author},{" "}
          {when(policies.data?.created_at)})
        </h2>
        <textarea aria-label="Policies (YAML)" rows={22} spellCheck={false} value={text}
          readOnly={!editable} onChange={(e) => setText(e.target.value)} />
        {editable && <button type="button" onClick={save}>Validate and save</button>}
        {saved && <p role="status">{saved}</p>}
        <ErrorNote error={error} />
      </section>
      <section aria-labelledby="policy-history">
        <h2 id="policy-history">History</h2>
        <table>
          <thead><tr><th>Version</th><th>Source</th><th>Author</th><th>When</th><th /></tr></thead>
          <tbody>
            {(history.data?.items ?? []).map((v) => (
              <tr key={v.version}>
                <td>{v.version}</td><td>{v.source}</td><td>{v.author}</td><td>{when(v.created_at)}</td>
                <td>
                  {editable && v.version !== policies.data?.version && (
                    <button type="button" onClick={() => rollback(v.version)}>Roll back to this</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
