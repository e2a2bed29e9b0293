import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

const KINDS = {
  standup: "Stand-up",
  brainstorm: "Brainstorm",
  allhands: "All-hands",
} as const;
type Kind = keyof typeof KINDS;

/** Start a meeting held by the chosen personas, then watch it live on its run's page. */
export function Meetings({ me }: { me: Me }) {
  const navigate = useNavigate();
  const personas = useQuery({
    queryKey: ["personas"],
    queryFn: async () => unwrap(await api.GET("/personas")),
  });
  const [kind, setKind] = useState<Kind>("standup");
  const [topic, setTopic] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (!can(me, "hold_meetings")) return <p>Your roles cannot hold meetings.</p>;

  const start = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = { participants: chosen };
    if (kind === "brainstorm" && topic.trim()) body.topic = topic.trim();
    try {
      const path = `/meetings/${kind}` as "/meetings/standup";
      const res = await api.POST(path, {
        body: body as never,
        headers: { Prefer: "respond-async" },
      });
      const started = unwrap(res) as unknown as { run_id: number };
      navigate(`/runs/${started.run_id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const items = (personas.data?.items ?? []) as { id: string; name?: string; title?: string }[];
  return (
    <section>
      <h1>Meetings</h1>
      <form className="card" onSubmit={start}>
        <fieldset>
          <legend>Meeting</legend>
          {(Object.keys(KINDS) as Kind[]).map((k) => (
            <label key={k} className="inline">
              <input type="radio" name="kind" value={k} checked={kind === k}
                onChange={() => setKind(k)} />
              {KINDS[k]}
            </label>
          ))}
        </fieldset>
        {kind === "brainstorm" && (
          <label>
            Topic
            <input value={topic} onChange={(e) => setTopic(e.target.value)} />
          </label>
        )}
        <fieldset>
          <legend>Participants (none chosen: the leadership)</legend>
          {items.map((p) => (
            <label key={p.id} className="inline">
              <input type="checkbox" checked={chosen.includes(p.id)}
                onChange={(e) =>
                  setChosen(e.target.checked ? [...chosen, p.id] : chosen.filter((c) => c !== p.id))
                } />
              {p.name ?? p.id} {p.title ? `(${p.title})` : ""}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={busy}>Start {KINDS[kind].toLowerCase()}</button>
        <ErrorNote error={error} />
      </form>
    </section>
  );
}
