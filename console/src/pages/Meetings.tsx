import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

const KINDS = {
  standup: "Stand-up",
  brainstorm: "Brainstorm",
  allhands: "All-hands",
} as const;
type Kind = keyof typeof KINDS;


/** A text field of a persona's document ("" when absent or not text). */
const field = (p: Schemas["PersonaView"], k: string): string => {
  const v = p.persona[k];
  return typeof v === "string" ? v : "";
};

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
    const headers = { Prefer: "respond-async" };
    const participants = chosen;
    try {
      const res =
        kind === "standup"
          ? await api.POST("/meetings/standup", { body: { participants }, headers })
          : kind === "brainstorm"
            ? await api.POST("/meetings/brainstorm", {
                body: { participants, ...(topic.trim() ? { topic: topic.trim() } : {}) },
                headers,
              })
            : await api.POST("/meetings/allhands", { body: { participants }, headers });
      const started = unwrap(res);
      if (started.run_id != null) navigate(`/runs/${started.run_id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const items = personas.data?.items ?? [];
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
              {field(p, "name") || p.id} {field(p, "title") ? `(${field(p, "title")})` : ""}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={busy}>Start {KINDS[kind].toLowerCase()}</button>
        <ErrorNote error={error} />
      </form>
    </section>
  );
}
