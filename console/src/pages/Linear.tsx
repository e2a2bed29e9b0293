import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

/** Linear: teams, the current cycle's issues, a new issue. */
export function Linear({ me }: { me: Me }) {
  const qc = useQueryClient();
  const teams = useQuery({
    queryKey: ["linear-teams"],
    queryFn: async () => unwrap(await api.GET("/linear/teams")),
    retry: false,
  });
  const [team, setTeam] = useState("");
  const teamId = team || teams.data?.[0]?.id || "";
  const cycle = useQuery({
    queryKey: ["linear-cycle", teamId],
    queryFn: async () =>
      unwrap(await api.GET("/linear/cycles", { params: { query: { team_id: teamId, when: "current" } } }))[0] ?? null,
    enabled: !!teamId,
  });
  const issues = useQuery({
    queryKey: ["linear-issues", teamId, cycle.data?.id],
    queryFn: async () =>
      unwrap(await api.GET("/linear/issues", {
        params: { query: { team_id: teamId, ...(cycle.data ? { cycle_id: cycle.data.id } : {}) } },
      })).items,
    enabled: !!teamId && cycle.isFetched,
  });
  const [title, setTitle] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<string | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const out = unwrap(await api.POST("/linear/issues", { body: { team_id: teamId, title } }));
      setCreated(`Created ${out.identifier}`);
      setTitle("");
      await qc.invalidateQueries({ queryKey: ["linear-issues"] });
    } catch (err) {
      setError(err);
    }
  };
  if (teams.error) return (<section><h1>Linear</h1><ErrorNote error={teams.error} /></section>);
  return (
    <section>
      <h1>Linear</h1>
      <label>
        Team
        <select value={teamId} onChange={(e) => setTeam(e.target.value)}>
          {(teams.data ?? []).map((t) => <option key={t.id} value={t.id}>{t.name ?? t.key ?? t.id}</option>)}
        </select>
      </label>
      <h2>{cycle.data ? `Cycle ${cycle.data.number ?? ""} ${cycle.data.name ?? ""}` : "No current cycle: recent issues"}</h2>
      <ul>
        {(issues.data ?? []).map((i) => (
          <li key={i.id}>
            <a href={i.url} target="_blank" rel="noreferrer">{i.identifier}</a> {i.title}{" "}
            <small>{i.state?.name}</small>
          </li>
        ))}
      </ul>
      {can(me, "create_linear_issues") && (
        <form className="filters" onSubmit={create}>
          <label>
            New issue title
            <input required value={title} onChange={(e) => setTitle(e.target.value)} />
          </label>
          <button type="submit">Create issue</button>
        </form>
      )}
      {created && <p role="status">{created}</p>}
      <ErrorNote error={error} />
    </section>
  );
}
