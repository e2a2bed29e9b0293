import { useState, type FormEvent, type ReactNode } from "react";
import { Link, useParams } from "react-router";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, check, unwrap, when, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/StatusBadge";

/** Every event type a webhook or an event trigger may name. */
export const EVENT_TYPES = [
  "run.started", "run.succeeded", "run.failed", "run.cancelled",
  "approval.requested", "approval.decided", "approval.expired",
  "budget.warning", "budget.exceeded", "budget.forecast",
  "minutes.created", "hiring_plan.ready", "persona.changed", "policy.changed",
  "schedule.refused", "trigger.refused", "webhook.disabled", "webhook.test",
] as const;

type Target = Schemas["Target"];
type RunView = Schemas["RunView"];

/** Reads a JSON object typed into a textarea; a message naming the field when it is not one. */
export function parseObject(field: string, text: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FieldProblem(field, "is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FieldProblem(field, "must be a JSON object ({ … })");
  }
  return value as Record<string, unknown>;
}

/** A problem found before asking the server, shown at its field. */
export class FieldProblem extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field} ${message}`);
    this.field = field;
  }
}

function describe(t: Target | Record<string, unknown>): string {
  const target = t as Record<string, unknown>;
  switch (target.kind) {
    case "meeting":
      return `${String(target.type)} meeting`;
    case "workflow":
      return `workflow ${String(target.workflow)}`;
    case "hiring_review":
      return "hiring review";
    default:
      return String(target.kind);
  }
}

/** Schedules, triggers and webhooks: what the organization does on its own. */
export function Automation({ me }: { me: Me }) {
  const [tab, setTab] = useState<"schedules" | "triggers" | "webhooks">("schedules");
  const tabs: [typeof tab, string][] = [["schedules", "Schedules"], ["triggers", "Triggers"]];
  if (can(me, "manage_webhooks")) tabs.push(["webhooks", "Webhooks"]);
  return (
    <div>
      <h1>Automation</h1>
      <div role="tablist" aria-label="Automation" className="filters">
        {tabs.map(([id, label]) => (
          <button key={id} type="button" role="tab" aria-selected={tab === id} onClick={() => setTab(id)}>
            {label}
          </button>
        ))}
      </div>
      {tab === "schedules" && <Schedules me={me} />}
      {tab === "triggers" && <Triggers me={me} />}
      {tab === "webhooks" && <Webhooks />}
    </div>
  );
}

/** Loading and failure are not empty states. */
function Loaded<T>({ q, empty, children }: {
  q: { isPending: boolean; error: unknown; data?: T[] };
  empty: string;
  children: (rows: T[]) => ReactNode;
}) {
  if (q.isPending) return <p className="loading">Loading…</p>;
  if (q.error) return <ErrorNote error={q.error} />;
  const rows = q.data ?? [];
  return rows.length === 0 ? <p>{empty}</p> : <>{children(rows)}</>;
}

/** The secret of something just made, shown once until dismissed. */
function SecretOnce({ label, secret, extra, onDismiss }: {
  label: string; secret: string; extra?: ReactNode; onDismiss: () => void;
}) {
  return (
    <div role="status" className="secret">
      <p>
        {label} (shown once, copy it now; it will not be shown again): <code>{secret}</code>
      </p>
      {extra}
      <button type="button" onClick={onDismiss}>I have copied it</button>
    </div>
  );
}

/** Edits a target: its kind and, per kind, what it starts with. */
function TargetEditor({ value, onChange }: {
  value: TargetDraft; onChange: (v: TargetDraft) => void;
}) {
  const set = (patch: Partial<TargetDraft>) => onChange({ ...value, ...patch });
  return (
    <fieldset>
      <legend>What it starts</legend>
      <label>
        Target
        <select value={value.kind} onChange={(e) => set({ kind: e.target.value as TargetDraft["kind"] })}>
          <option value="meeting">a meeting</option>
          <option value="workflow">a saved workflow</option>
          <option value="hiring_review">a hiring review</option>
        </select>
      </label>
      {value.kind === "meeting" && (
        <label>
          Meeting type
          <select value={value.meeting} onChange={(e) => set({ meeting: e.target.value })}>
            <option value="standup">standup</option>
            <option value="brainstorm">brainstorm</option>
            <option value="allhands">allhands</option>
          </select>
        </label>
      )}
      {value.kind === "workflow" && (
        <label>
          Workflow name
          <input value={value.workflow} onChange={(e) => set({ workflow: e.target.value })} />
        </label>
      )}
      <label>
        {value.kind === "meeting" ? "Meeting body (JSON)" : "Inputs (JSON)"}
        <textarea rows={3} value={value.json} onChange={(e) => set({ json: e.target.value })}
          placeholder={value.kind === "meeting" ? '{"today": ["…"]}' : "{}"} />
      </label>
    </fieldset>
  );
}

type TargetDraft = { kind: "meeting" | "workflow" | "hiring_review"; meeting: string; workflow: string; json: string };
const NEW_TARGET: TargetDraft = { kind: "meeting", meeting: "standup", workflow: "", json: "" };

function targetOf(d: TargetDraft): Target {
  const field = d.kind === "meeting" ? "target.body" : "target.inputs";
  const obj = parseObject(field, d.json);
  if (d.kind === "meeting") return { kind: "meeting", type: d.meeting, body: obj } as Target;
  if (d.kind === "workflow") return { kind: "workflow", workflow: d.workflow, inputs: obj } as Target;
  return { kind: "hiring_review", inputs: obj } as Target;
}

function Schedules({ me }: { me: Me }) {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ["schedules"], queryFn: async () => unwrap(await api.GET("/schedules")) });
  const [name, setName] = useState("");
  const [cron, setCron] = useState("0 9 * * MON-FRI");
  const [tz, setTz] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [catchUp, setCatchUp] = useState("skip");
  const [target, setTarget] = useState<TargetDraft>(NEW_TARGET);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { name, cron, timezone: tz, catch_up: catchUp, target: targetOf(target) } as Schemas["ScheduleBody"];
      unwrap(await api.POST("/schedules", { body }));
      setName("");
      await qc.invalidateQueries({ queryKey: ["schedules"] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="schedules">
      <h2 id="schedules">Schedules</h2>
      {can(me, "manage_automations") && (
        <form onSubmit={create} className="stack" aria-label="New schedule">
          <label>Schedule name<input required value={name} onChange={(e) => setName(e.target.value)} /></label>
          <label>
            Cron
            <input required value={cron} onChange={(e) => setCron(e.target.value)} aria-describedby="cron-hint" />
            <small id="cron-hint">five fields (minute hour day month weekday), or six with seconds first</small>
          </label>
          <label>Time zone<input required value={tz} onChange={(e) => setTz(e.target.value)} /></label>
          <label>
            After downtime
            <select value={catchUp} onChange={(e) => setCatchUp(e.target.value)}>
              <option value="skip">skip missed slots</option>
              <option value="run_once">run the newest missed slot once</option>
            </select>
          </label>
          <TargetEditor value={target} onChange={setTarget} />
          <button type="submit">Create schedule</button>
        </form>
      )}
      <ErrorNote error={error} />
      <Loaded q={list} empty="No schedules yet.">
        {(rows) => (
          <table aria-label="Schedules">
            <thead><tr><th>Name</th><th>Starts</th><th>When</th><th>Next</th><th>Owner</th><th>State</th></tr></thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id}>
                  <td><Link to={`/automation/schedules/${s.id}`}>{s.name}</Link></td>
                  <td>{describe(s.target as Target)}</td>
                  <td><code>{s.cron}</code> {s.timezone}</td>
                  <td>{s.next_fire_times[0] ? when(s.next_fire_times[0]) : "–"}</td>
                  <td>{s.owner ?? "–"}</td>
                  <td>{s.enabled ? "active" : "paused"}{s.source === "file" ? " (schedules.yaml)" : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function RunsList({ runs }: { runs: { isPending: boolean; error: unknown; data?: RunView[] } }) {
  return (
    <Loaded q={runs} empty="No runs yet.">
      {(rows) => (
        <table aria-label="Runs started">
          <thead><tr><th>Run</th><th>Status</th><th>Summary</th><th>Created</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td><Link to={`/runs/${r.id}`}>#{r.id}</Link></td>
                <td><StatusBadge status={r.status} /></td>
                <td>{r.summary}</td>
                <td>{when(r.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Loaded>
  );
}

/** One schedule: its next five slots (in its zone and here), its runs, pause and delete. */
export function ScheduleDetail({ me }: { me: Me }) {
  const id = Number(useParams().id);
  const qc = useQueryClient();
  const s = useQuery({
    queryKey: ["schedule", id],
    queryFn: async () => unwrap(await api.GET("/schedules/{id}", { params: { path: { id } } })),
    enabled: Number.isInteger(id),
  });
  const runs = useQuery({
    queryKey: ["schedule-runs", id],
    queryFn: async () => unwrap(await api.GET("/schedules/{id}/runs", { params: { path: { id } } })),
    enabled: Number.isInteger(id),
    refetchInterval: 5000,
  });
  const [error, setError] = useState<unknown>(null);
  const [gone, setGone] = useState(false);
  if (!Number.isInteger(id)) return <p>No such schedule.</p>;
  if (s.isPending) return <p className="loading">Loading…</p>;
  if (s.error || !s.data) return <ErrorNote error={s.error} />;
  if (gone) return <p>Schedule deleted. <Link to="/automation">Back to automation</Link></p>;
  const row = s.data;
  const inZone = (t: string) =>
    new Date(t).toLocaleString(undefined, { timeZone: row.timezone, timeZoneName: "short" });
  const toggle = async () => {
    setError(null);
    try {
      const body = { name: row.name, description: row.description, target: row.target as Target, cron: row.cron,
        timezone: row.timezone, catch_up: row.catch_up, on_dst_gap: row.on_dst_gap, enabled: !row.enabled } as Schemas["ScheduleBody"];
      unwrap(await api.PUT("/schedules/{id}", { params: { path: { id } }, body }));
      await qc.invalidateQueries({ queryKey: ["schedule", id] });
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      check(await api.DELETE("/schedules/{id}", { params: { path: { id } } }));
      await qc.invalidateQueries({ queryKey: ["schedules"] });
      setGone(true);
    } catch (err) {
      setError(err);
    }
  };
  const mayChange = can(me, "manage_automations") && row.source !== "file";
  return (
    <div>
      <p><Link to="/automation">Automation</Link> / schedule</p>
      <h1>{row.name}</h1>
      <dl>
        <dt>Starts</dt><dd>{describe(row.target as Target)}</dd>
        <dt>When</dt><dd><code>{row.cron}</code> in {row.timezone} (catch-up: {row.catch_up}, DST gap: {row.on_dst_gap})</dd>
        <dt>Owner</dt><dd>{row.owner ?? "none (runs start nothing until the owner exists)"}</dd>
        <dt>State</dt><dd>{row.enabled ? "active" : "paused"}, version {row.version}</dd>
        <dt>Last slot</dt><dd>{when(row.last_slot_at)}{row.last_run_id ? <> (<Link to={`/runs/${row.last_run_id}`}>run #{row.last_run_id}</Link>)</> : null}</dd>
      </dl>
      {row.source === "file" && <p>Declared in the config folder's <code>schedules.yaml</code>: change it there.</p>}
      {mayChange && (
        <p>
          <button type="button" onClick={toggle}>{row.enabled ? "Pause" : "Resume"}</button>{" "}
          <button type="button" onClick={remove}>Delete</button>
        </p>
      )}
      <ErrorNote error={error} />
      <h2>Next slots</h2>
      {row.next_fire_times.length === 0 ? <p>None while paused.</p> : (
        <ol aria-label="Next slots">
          {row.next_fire_times.map((t) => (
            <li key={t}>{inZone(t)} <small>({new Date(t).toLocaleString()} here)</small></li>
          ))}
        </ol>
      )}
      <h2>Runs</h2>
      <RunsList runs={runs} />
    </div>
  );
}

function Triggers({ me }: { me: Me }) {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ["triggers"], queryFn: async () => unwrap(await api.GET("/triggers")) });
  const [name, setName] = useState("");
  const [kind, setKind] = useState<"webhook" | "event">("webhook");
  const [auth, setAuth] = useState("standard_webhooks");
  const [secret, setSecret] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [depth, setDepth] = useState(3);
  const [mapping, setMapping] = useState("");
  const [target, setTarget] = useState<TargetDraft>(NEW_TARGET);
  const [made, setMade] = useState<{ secret: string; url?: string | null } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const body = {
        name, kind, auth, events: kind === "event" ? events : [], max_depth: depth,
        secret: secret.trim() === "" ? undefined : secret.trim(),
        mapping: parseObject("mapping", mapping), target: targetOf(target),
      } as Schemas["TriggerBody"];
      const t = unwrap(await api.POST("/triggers", { body }));
      setMade({ secret: t.secret, url: t.hook_url });
      setName("");
      setSecret("");
      await qc.invalidateQueries({ queryKey: ["triggers"] });
    } catch (err) {
      setError(err);
    }
  };
  const toggle = (t: string) => setEvents((ev) => (ev.includes(t) ? ev.filter((x) => x !== t) : [...ev, t]));
  return (
    <section aria-labelledby="triggers">
      <h2 id="triggers">Triggers</h2>
      {made && (
        <SecretOnce label="The trigger's secret" secret={made.secret} onDismiss={() => setMade(null)}
          extra={made.url ? <p>Hook URL: <code>{made.url}</code></p> : undefined} />
      )}
      {can(me, "manage_automations") && (
        <form onSubmit={create} className="stack" aria-label="New trigger">
          <label>Trigger name<input required value={name} onChange={(e) => setName(e.target.value)} /></label>
          <label>
            Fires on
            <select value={kind} onChange={(e) => setKind(e.target.value as "webhook" | "event")}>
              <option value="webhook">a signed delivery to its hook URL</option>
              <option value="event">vorg's own events</option>
            </select>
          </label>
          {kind === "webhook" ? (
            <>
              <label>
                Signature
                <select value={auth} onChange={(e) => setAuth(e.target.value)}>
                  <option value="standard_webhooks">Standard Webhooks</option>
                  <option value="github">GitHub (X-Hub-Signature-256)</option>
                  <option value="linear">Linear (Linear-Signature)</option>
                  <option value="secret">a shared secret header</option>
                </select>
              </label>
              <label>Sender's secret (optional: one is made otherwise)<input value={secret} onChange={(e) => setSecret(e.target.value)} /></label>
            </>
          ) : (
            <fieldset>
              <legend>Events</legend>
              {EVENT_TYPES.filter((t) => t !== "webhook.test").map((t) => (
                <label key={t} className="inline"><input type="checkbox" checked={events.includes(t)} onChange={() => toggle(t)} />{t}</label>
              ))}
              <label>Max depth<input type="number" min={1} max={10} value={depth} onChange={(e) => setDepth(Number(e.target.value))} /></label>
            </fieldset>
          )}
          <label>
            Mapping (JSON: field → JSON pointer into the delivery)
            <textarea rows={2} value={mapping} onChange={(e) => setMapping(e.target.value)} placeholder='{"topic": "/pull_request/title"}' />
          </label>
          <TargetEditor value={target} onChange={setTarget} />
          <button type="submit">Create trigger</button>
        </form>
      )}
      <ErrorNote error={error} />
      <Loaded q={list} empty="No triggers yet.">
        {(rows) => (
          <table aria-label="Triggers">
            <thead><tr><th>Name</th><th>Fires on</th><th>Starts</th><th>Owner</th><th>State</th></tr></thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{t.kind === "event" ? t.events.join(", ") : <>{t.auth} delivery to <code>{t.hook_url}</code></>}</td>
                  <td>{describe(t.target as Target)}</td>
                  <td>{t.owner ?? "–"}</td>
                  <td>{t.enabled ? "active" : "paused"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function Webhooks() {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ["webhooks"], queryFn: async () => unwrap(await api.GET("/webhooks")) });
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [format, setFormat] = useState("standard");
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { name, url, events, format } as Schemas["WebhookBody"];
      const w = unwrap(await api.POST("/webhooks", { body }));
      setSecret(w.secret);
      setName("");
      setUrl("");
      await qc.invalidateQueries({ queryKey: ["webhooks"] });
    } catch (err) {
      setError(err);
    }
  };
  const toggle = (t: string) => setEvents((ev) => (ev.includes(t) ? ev.filter((x) => x !== t) : [...ev, t]));
  return (
    <section aria-labelledby="webhooks">
      <h2 id="webhooks">Webhooks</h2>
      {secret && <SecretOnce label="The signing secret" secret={secret} onDismiss={() => setSecret(null)} />}
      <form onSubmit={create} className="stack" aria-label="New webhook">
        <label>Webhook name<input required value={name} onChange={(e) => setName(e.target.value)} /></label>
        <label>URL<input required type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.example.com/vorg" /></label>
        <fieldset>
          <legend>Events</legend>
          <label className="inline"><input type="checkbox" checked={events.includes("*")} onChange={() => toggle("*")} />all events</label>
          {EVENT_TYPES.map((t) => (
            <label key={t} className="inline"><input type="checkbox" checked={events.includes(t)} onChange={() => toggle(t)} />{t}</label>
          ))}
        </fieldset>
        <label>
          Format
          <select value={format} onChange={(e) => setFormat(e.target.value)}>
            <option value="standard">Standard Webhooks (JSON, signed)</option>
            <option value="slack">Slack incoming webhook</option>
          </select>
        </label>
        <button type="submit">Create webhook</button>
      </form>
      <ErrorNote error={error} />
      <Loaded q={list} empty="No webhooks yet.">
        {(rows) => (
          <table aria-label="Webhooks">
            <thead><tr><th>Name</th><th>URL</th><th>Events</th><th>State</th><th>Last success</th><th>Failures in a row</th></tr></thead>
            <tbody>
              {rows.map((w) => (
                <tr key={w.id}>
                  <td><Link to={`/automation/webhooks/${w.id}`}>{w.name}</Link></td>
                  <td><code>{w.url}</code></td>
                  <td>{w.events.join(", ")}</td>
                  <td>{w.enabled ? "active" : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ""}`}</td>
                  <td>{when(w.last_success_at)}</td>
                  <td>{w.failure_streak}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

/** One subscription and its delivery log: attempts, test, redeliver, re-enable. */
export function WebhookDetail() {
  const id = Number(useParams().id);
  const qc = useQueryClient();
  const hook = useQuery({
    queryKey: ["webhook", id],
    queryFn: async () => unwrap(await api.GET("/webhooks/{id}", { params: { path: { id } } })),
    enabled: Number.isInteger(id),
  });
  const deliveries = useQuery({
    queryKey: ["deliveries", id],
    queryFn: async () => unwrap(await api.GET("/webhooks/{id}/deliveries", { params: { path: { id }, query: { limit: 50 } } })),
    enabled: Number.isInteger(id),
    refetchInterval: 3000,
  });
  const [open, setOpen] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  if (!Number.isInteger(id)) return <p>No such webhook.</p>;
  if (hook.isPending) return <p className="loading">Loading…</p>;
  if (hook.error || !hook.data) return <ErrorNote error={hook.error} />;
  const w = hook.data;
  const act = async (f: () => Promise<void>) => {
    setError(null);
    try {
      await f();
      await qc.invalidateQueries({ queryKey: ["deliveries", id] });
      await qc.invalidateQueries({ queryKey: ["webhook", id] });
    } catch (err) {
      setError(err);
    }
  };
  const test = () => act(async () => {
    unwrap(await api.POST("/webhooks/{id}/test", { params: { path: { id } } }));
  });
  const enable = () => act(async () => {
    const body = { name: w.name, url: w.url, events: w.events, format: w.format, enabled: true } as Schemas["WebhookBody"];
    unwrap(await api.PUT("/webhooks/{id}", { params: { path: { id } }, body }));
  });
  const redeliver = (delivery_id: number) => act(async () => {
    unwrap(await api.POST("/webhooks/{id}/deliveries/{delivery_id}/redeliver", { params: { path: { id, delivery_id } } }));
  });
  return (
    <div>
      <p><Link to="/automation">Automation</Link> / webhook</p>
      <h1>{w.name}</h1>
      <dl>
        <dt>URL</dt><dd><code>{w.url}</code> ({w.format})</dd>
        <dt>Events</dt><dd>{w.events.join(", ")}</dd>
        <dt>State</dt><dd>{w.enabled ? "active" : `disabled: ${w.disabled_reason ?? "by an admin"}`}</dd>
        <dt>Failures in a row</dt><dd>{w.failure_streak}</dd>
      </dl>
      <p>
        <button type="button" onClick={test}>Send test</button>{" "}
        {!w.enabled && <button type="button" onClick={enable}>Enable again</button>}
      </p>
      <ErrorNote error={error} />
      <h2>Deliveries</h2>
      <Loaded q={{ ...deliveries, data: deliveries.data?.items }} empty="No deliveries yet.">
        {(rows) => (
          <table aria-label="Deliveries">
            <thead><tr><th>Event</th><th>Status</th><th>Attempts</th><th>Last answer</th><th>Created</th><th /></tr></thead>
            <tbody>
              {rows.map((d) => (
                <DeliveryRow key={d.id} hook={id} d={d} open={open === d.id}
                  onToggle={() => setOpen(open === d.id ? null : d.id)} onRedeliver={() => redeliver(d.id)} />
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </div>
  );
}

function DeliveryRow({ hook, d, open, onToggle, onRedeliver }: {
  hook: number; d: Schemas["DeliveryView"]; open: boolean; onToggle: () => void; onRedeliver: () => void;
}) {
  const detail = useQuery({
    queryKey: ["delivery", d.id, d.attempts],
    queryFn: async () => unwrap(await api.GET("/webhooks/{id}/deliveries/{delivery_id}", { params: { path: { id: hook, delivery_id: d.id } } })),
    enabled: open,
  });
  return (
    <>
      <tr>
        <td><button type="button" className="link" aria-expanded={open} onClick={onToggle}>{d.event_type}</button></td>
        <td><StatusBadge status={d.status} /></td>
        <td>{d.attempts}</td>
        <td>{d.last_status ?? d.last_error ?? "–"}</td>
        <td>{when(d.created_at)}</td>
        <td><button type="button" onClick={onRedeliver}>Redeliver</button></td>
      </tr>
      {open && (
        <tr>
          <td colSpan={6}>
            <p>Message id <code>{d.msg_id}</code></p>
            {detail.isPending ? <p className="loading">Loading…</p> : detail.error ? <ErrorNote error={detail.error} /> : (
              <table aria-label="Attempts">
                <thead><tr><th>#</th><th>Started</th><th>Took</th><th>Status</th><th>Error</th><th>Answer</th></tr></thead>
                <tbody>
                  {(detail.data?.attempts_log ?? []).map((a) => (
                    <tr key={a.attempt}>
                      <td>{a.attempt}</td><td>{when(a.started_at)}</td><td>{a.duration_ms} ms</td>
                      <td>{a.status_code ?? "–"}</td><td>{a.error ?? ""}</td><td><code>{a.response_excerpt}</code></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </td>
        </tr>
      )}
    </>
  );
}
