import { useId, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
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
type TriggerView = Schemas["TriggerView"];
type Json = Record<string, unknown>;

/** A JSON object typed into a textarea (empty: `{}`), or what is wrong with it. */
export function parseObject(text: string): { value: Json } | { problem: string } {
  if (text.trim() === "") return { value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { problem: `Not valid JSON (${e instanceof Error ? e.message : String(e)}).` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problem: 'Must be a JSON object, like {"key": "value"}.' };
  }
  return { value: value as Json };
}

/**
 * Reads JSON textareas for one submit: `read(key, text)` answers the object (or `{}`),
 * noting a problem under `key`; `problems` holds them all afterwards.
 */
function jsonReader() {
  const problems: Record<string, string> = {};
  const read = (key: string, text: string): Json => {
    const parsed = parseObject(text);
    if ("problem" in parsed) {
      problems[key] = parsed.problem;
      return {};
    }
    return parsed.value;
  };
  return { read, problems };
}

/** A textarea for a JSON object, with the problem found in it before asking the server. */
function JsonField({ label, value, onChange, problem, placeholder, rows = 3 }: {
  label: string; value: string; onChange: (v: string) => void; problem?: string | undefined;
  placeholder?: string; rows?: number;
}) {
  const errId = useId();
  return (
    <label className="wide">
      {label}
      <textarea rows={rows} spellCheck={false} value={value} placeholder={placeholder}
        aria-invalid={problem ? true : undefined} aria-describedby={problem ? errId : undefined}
        onChange={(e) => onChange(e.target.value)} />
      {problem && <span id={errId} className="field-error">{problem}</span>}
    </label>
  );
}

function describe(t: Target | Json): string {
  const target = t as Json;
  switch (target.kind) {
    case "meeting":
      return `${String(target.type)} meeting`;
    case "workflow":
      return `workflow ${String(target.workflow)}${target.version ? ` v${String(target.version)}` : ""}`;
    case "hiring_review":
      return "hiring review";
    default:
      return String(target.kind);
  }
}

/** What a target starts with (a meeting's body, a workflow's or review's inputs), as JSON. */
function argsOf(t: Target | Json): string {
  const target = t as Json;
  const args = target.kind === "meeting" ? target.body : target.inputs;
  return args && typeof args === "object" && Object.keys(args).length > 0 ? JSON.stringify(args) : "";
}

/** Whether `me` may change something `owner_id` owns (its owner or an admin). */
function mayChangeOwned(me: Me, ownerId: number | null | undefined): boolean {
  return can(me, "manage_automations") && (me.roles.includes("admin") || ownerId === me.id);
}

/** A date in a time zone, e.g. "12/5/2026, 9:00:00 AM CET" (ISO if the browser lacks the zone). */
function inZone(ts: string, timeZone: string): string {
  try {
    return new Date(ts).toLocaleString(undefined, { timeZone, timeZoneName: "short" });
  } catch {
    return `${ts} (UTC)`;
  }
}

const TABS = [["schedules", "Schedules"], ["triggers", "Triggers"], ["webhooks", "Webhooks"]] as const;
type Tab = (typeof TABS)[number][0];

/** Schedules, triggers and webhooks: what the organization does on its own. */
export function Automation({ me }: { me: Me }) {
  const [params, setParams] = useSearchParams();
  const tabs = TABS.filter(([id]) => id !== "webhooks" || can(me, "manage_webhooks"));
  const tab: Tab = tabs.find(([id]) => id === params.get("tab"))?.[0] ?? "schedules";
  return (
    <div>
      <h1>Automation</h1>
      <div role="tablist" aria-label="Automation" className="filters tabs">
        {tabs.map(([id, label]) => (
          <button key={id} type="button" role="tab" id={`tab-${id}`} aria-selected={tab === id}
            aria-controls="automation-panel"
            onClick={() => setParams(id === "schedules" ? {} : { tab: id }, { replace: true })}>
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="automation-panel" aria-labelledby={`tab-${tab}`}>
        {tab === "schedules" && <Schedules me={me} />}
        {tab === "triggers" && <Triggers me={me} />}
        {tab === "webhooks" && <Webhooks />}
      </div>
    </div>
  );
}

/** Loading and failure are not empty states. */
function Loaded<T>({ q, empty, children }: {
  q: { isPending: boolean; error: unknown; data?: T[] | undefined };
  empty: string;
  children: (rows: T[]) => ReactNode;
}) {
  if (q.isPending) return <p className="loading">Loading…</p>;
  if (q.error) return <ErrorNote error={q.error} />;
  const rows = q.data ?? [];
  return rows.length === 0 ? <p>{empty}</p> : <>{children(rows)}</>;
}

/**
 * The secret of something just made, shown once until dismissed. It lives only in the
 * state of the component that made it (never in the query cache), so it is gone once
 * dismissed or once the page or tab is left.
 */
function SecretOnce({ label, secret, extra, onDismiss }: {
  label: string; secret: string; extra?: ReactNode; onDismiss: () => void;
}) {
  return (
    <div role="status" className="secret notice">
      <p>
        {label}: <code>{secret}</code>
      </p>
      {extra}
      <p><strong>Copy it now: it will not be shown again.</strong></p>
      <button type="button" onClick={onDismiss}>I have copied it</button>
    </div>
  );
}

type TargetDraft = { kind: "meeting" | "workflow" | "hiring_review"; meeting: string; workflow: string; json: string };
const NEW_TARGET: TargetDraft = { kind: "meeting", meeting: "standup", workflow: "", json: "" };
/** The key under which a target's JSON problem is noted. */
const TARGET_JSON = "target";

/** Edits a target: its kind and, per kind, what it starts with. */
function TargetEditor({ value, onChange, problem }: {
  value: TargetDraft; onChange: (v: TargetDraft) => void; problem?: string | undefined;
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
          <input required value={value.workflow} onChange={(e) => set({ workflow: e.target.value })} />
        </label>
      )}
      <JsonField label={value.kind === "meeting" ? "Meeting body (JSON)" : "Inputs (JSON)"}
        value={value.json} onChange={(json) => set({ json })} problem={problem}
        placeholder={value.kind === "meeting" ? 'optional, e.g. {"today": ["…"]}' : 'optional, e.g. {"key": "value"}'} />
    </fieldset>
  );
}

function targetOf(d: TargetDraft, read: (key: string, text: string) => Json): Target {
  const args = read(TARGET_JSON, d.json);
  if (d.kind === "meeting") return { kind: "meeting", type: d.meeting as Schemas["MeetingType"], body: args };
  if (d.kind === "workflow") return { kind: "workflow", workflow: d.workflow.trim(), inputs: args };
  return { kind: "hiring_review", inputs: args };
}

/** The browser's IANA time zones, for the time zone input's suggestions. */
const ZONES: string[] = (() => {
  try {
    return typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  } catch {
    return [];
  }
})();

function Schedules({ me }: { me: Me }) {
  const qc = useQueryClient();
  const list = useQuery({
    queryKey: ["schedules"],
    queryFn: async () => unwrap(await api.GET("/schedules")),
    refetchInterval: 30_000,
  });
  const zonesId = useId();
  const [name, setName] = useState("");
  const [cron, setCron] = useState("0 9 * * MON-FRI");
  const [tz, setTz] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [catchUp, setCatchUp] = useState("skip");
  const [dstGap, setDstGap] = useState("run");
  const [target, setTarget] = useState<TargetDraft>(NEW_TARGET);
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const json = jsonReader();
    const t = targetOf(target, json.read);
    setProblems(json.problems);
    if (Object.keys(json.problems).length > 0) return;
    setBusy(true);
    try {
      const body: Schemas["ScheduleBody"] = {
        name, cron, timezone: tz.trim(), catch_up: catchUp, on_dst_gap: dstGap, enabled: true, target: t,
      };
      unwrap(await api.POST("/schedules", { body }));
      setName("");
      await qc.invalidateQueries({ queryKey: ["schedules"] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
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
            <input required value={cron} spellCheck={false} onChange={(e) => setCron(e.target.value)} aria-describedby="cron-hint" />
            <small id="cron-hint" className="hint">five fields (minute hour day month weekday), or six with seconds first</small>
          </label>
          <label>
            Time zone
            <input required value={tz} list={zonesId} spellCheck={false} onChange={(e) => setTz(e.target.value)} />
            <datalist id={zonesId}>{ZONES.map((z) => <option key={z} value={z} />)}</datalist>
          </label>
          <label>
            After downtime
            <select value={catchUp} onChange={(e) => setCatchUp(e.target.value)}>
              <option value="skip">skip missed slots</option>
              <option value="run_once">run the newest missed slot once</option>
            </select>
          </label>
          <label>
            When a clock change skips the time
            <select value={dstGap} onChange={(e) => setDstGap(e.target.value)}>
              <option value="run">run just after the gap</option>
              <option value="skip">skip that day</option>
            </select>
          </label>
          <TargetEditor value={target} onChange={setTarget} problem={problems[TARGET_JSON]} />
          <div><button type="submit" disabled={busy}>Create schedule</button></div>
          <ErrorNote error={error} />
        </form>
      )}
      <Loaded q={list} empty="No schedules yet.">
        {(rows) => (
          <table aria-label="Schedules">
            <thead><tr><th>Name</th><th>Starts</th><th>When</th><th>Next</th><th>Owner</th><th>State</th></tr></thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id}>
                  <td><Link to={`/automation/schedules/${s.id}`}>{s.name}</Link></td>
                  <td>{describe(s.target)}</td>
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

function RunsList({ runs, label = "Runs started" }: {
  runs: { isPending: boolean; error: unknown; data?: RunView[] | undefined }; label?: string;
}) {
  return (
    <Loaded q={runs} empty="No runs yet.">
      {(rows) => (
        <table aria-label={label}>
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
  const navigate = useNavigate();
  const valid = Number.isInteger(id) && id > 0;
  const s = useQuery({
    queryKey: ["schedule", id],
    queryFn: async () => unwrap(await api.GET("/schedules/{id}", { params: { path: { id } } })),
    enabled: valid,
  });
  const runs = useQuery({
    queryKey: ["schedule-runs", id],
    queryFn: async () => unwrap(await api.GET("/schedules/{id}/runs", { params: { path: { id } } })),
    enabled: valid,
    refetchInterval: 5000,
  });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (!valid) return <p>No such schedule.</p>;
  if (s.isPending) return <p className="loading">Loading…</p>;
  if (s.error) return <ErrorNote error={s.error} />;
  const row = s.data;
  const act = async (f: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await f();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const toggle = () => act(async () => {
    // The whole schedule again, its owner kept (without one, the caller would become it).
    const body: Schemas["ScheduleBody"] = {
      name: row.name, description: row.description, target: row.target as unknown as Target, cron: row.cron,
      timezone: row.timezone, catch_up: row.catch_up, on_dst_gap: row.on_dst_gap, enabled: !row.enabled,
      ...(row.owner ? { owner: row.owner } : {}),
    };
    const saved = unwrap(await api.PUT("/schedules/{id}", { params: { path: { id } }, body }));
    qc.setQueryData(["schedule", id], saved);
    await qc.invalidateQueries({ queryKey: ["schedules"] });
  });
  const remove = () => act(async () => {
    check(await api.DELETE("/schedules/{id}", { params: { path: { id } } }));
    await qc.invalidateQueries({ queryKey: ["schedules"] });
    await navigate("/automation");
    qc.removeQueries({ queryKey: ["schedule", id] });
    qc.removeQueries({ queryKey: ["schedule-runs", id] });
  });
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const args = argsOf(row.target);
  return (
    <div>
      <p><Link to="/automation">Automation</Link> / schedule</p>
      <h1>{row.name}</h1>
      {row.description && <p>{row.description}</p>}
      <dl className="facts">
        <dt>Starts</dt><dd>{describe(row.target)}</dd>
        {args && <><dt>With</dt><dd><code>{args}</code></dd></>}
        <dt>Cron</dt><dd><code>{row.cron}</code> in {row.timezone}</dd>
        <dt>After downtime</dt><dd>{row.catch_up === "run_once" ? "runs the newest missed slot once" : "skips missed slots"}</dd>
        <dt>Clock-change gap</dt><dd>{row.on_dst_gap === "skip" ? "skips that day" : "runs just after the gap"}</dd>
        <dt>Owner</dt><dd>{row.owner ?? "none (its slots start nothing until it has one)"}</dd>
        <dt>State</dt><dd>{row.enabled ? "active" : "paused"}, version {row.version}</dd>
        <dt>Source</dt><dd>{row.source === "file" ? "declared in schedules.yaml" : "made over the API"}</dd>
        <dt>Last slot</dt><dd>{when(row.last_slot_at)}{row.last_run_id ? <> (<Link to={`/runs/${row.last_run_id}`}>run #{row.last_run_id}</Link>)</> : null}</dd>
        <dt>Created</dt><dd>{when(row.created_at)}</dd>
      </dl>
      {row.source === "file" ? (
        <p className="note">Declared in schedules.yaml (the config folder): pause, change or delete it there.</p>
      ) : mayChangeOwned(me, row.owner_id) ? (
        <p>
          <button type="button" disabled={busy} onClick={toggle}>{row.enabled ? "Pause" : "Resume"}</button>{" "}
          <button type="button" disabled={busy} onClick={remove}>Delete</button>
        </p>
      ) : can(me, "manage_automations") ? (
        <p className="note">Only its owner or an admin may change it.</p>
      ) : null}
      <ErrorNote error={error} />
      <section aria-labelledby="slots">
        <h2 id="slots">Next slots</h2>
        {row.next_fire_times.length === 0 ? <p>None while paused.</p> : (
          <table aria-label="Next slots">
            <thead><tr><th>In {row.timezone}</th><th>Here ({here})</th></tr></thead>
            <tbody>
              {row.next_fire_times.map((t) => (
                <tr key={t}><td>{inZone(t, row.timezone)}</td><td>{when(t)}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="schedule-runs">
        <h2 id="schedule-runs">Runs</h2>
        <RunsList runs={runs} />
      </section>
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
  const [filter, setFilter] = useState("");
  const [depth, setDepth] = useState("3");
  const [mapping, setMapping] = useState("");
  const [target, setTarget] = useState<TargetDraft>(NEW_TARGET);
  const [problems, setProblems] = useState<Record<string, string>>({});
  // The new trigger's secret: in this component's state only, never in the query cache.
  const [made, setMade] = useState<{ name: string; secret: string; url?: string | null | undefined } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [rowError, setRowError] = useState<unknown>(null);
  const [open, setOpen] = useState<number | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const json = jsonReader();
    const body: Schemas["TriggerBody"] = {
      name, kind, max_depth: Number(depth),
      mapping: json.read("mapping", mapping) as Schemas["TriggerBody"]["mapping"],
      target: targetOf(target, json.read),
      enabled: true,
    };
    if (kind === "webhook") {
      body.auth = auth;
      if (secret.trim() !== "") body.secret = secret.trim();
    } else {
      body.events = events;
      body.filter = json.read("filter", filter) as Schemas["TriggerBody"]["filter"];
    }
    setProblems(json.problems);
    if (Object.keys(json.problems).length > 0) return;
    setBusy(true);
    try {
      const t = unwrap(await api.POST("/triggers", { body }));
      setMade({ name: t.name, secret: t.secret, url: t.hook_url });
      setName("");
      setSecret("");
      await qc.invalidateQueries({ queryKey: ["triggers"] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const change = async (t: TriggerView, f: () => Promise<unknown>) => {
    setRowError(null);
    try {
      await f();
      await qc.invalidateQueries({ queryKey: ["triggers"] });
      if (open === t.id) await qc.invalidateQueries({ queryKey: ["trigger-runs", t.id] });
    } catch (err) {
      setRowError(err);
    }
  };
  const toggleEnabled = (t: TriggerView) => change(t, async () => {
    // The whole trigger again (its hook URL and secret stay), its owner kept.
    const body = {
      name: t.name, kind: t.kind, auth: t.auth, events: t.events, filter: t.filter, max_depth: t.max_depth,
      target: t.target as unknown as Target, mapping: t.mapping, enabled: !t.enabled,
      ...(t.owner ? { owner: t.owner } : {}),
    } satisfies Schemas["TriggerBody"];
    unwrap(await api.PUT("/triggers/{id}", { params: { path: { id: t.id } }, body }));
  });
  const remove = (t: TriggerView) => change(t, async () => {
    check(await api.DELETE("/triggers/{id}", { params: { path: { id: t.id } } }));
  });
  const toggle = (t: string) => setEvents((ev) => (ev.includes(t) ? ev.filter((x) => x !== t) : [...ev, t]));
  return (
    <section aria-labelledby="triggers">
      <h2 id="triggers">Triggers</h2>
      {made && (
        <SecretOnce label={`Trigger ${made.name} was created. Its secret`} secret={made.secret}
          onDismiss={() => setMade(null)}
          extra={made.url ? <p>Hook URL (give it to the sender): <code>{made.url}</code></p> : undefined} />
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
              <label>
                Sender's secret (optional, 16 to 200 characters: one is made otherwise)
                <input value={secret} autoComplete="off" spellCheck={false} onChange={(e) => setSecret(e.target.value)} />
              </label>
            </>
          ) : (
            <>
              <fieldset>
                <legend>Events</legend>
                {EVENT_TYPES.map((t) => (
                  <label key={t} className="inline"><input type="checkbox" checked={events.includes(t)} onChange={() => toggle(t)} />{t}</label>
                ))}
              </fieldset>
              <JsonField label="Filter (JSON: fields the event's data must equal, optional)" rows={2}
                value={filter} onChange={setFilter} problem={problems.filter} placeholder='{"run_type": "workflow"}' />
              <label>
                Max depth (how many event-started runs a chain may go)
                <input type="number" min={1} max={10} required value={depth} onChange={(e) => setDepth(e.target.value)} />
              </label>
            </>
          )}
          <JsonField label="Mapping (JSON: target field → JSON pointer into the delivery, optional)" rows={2}
            value={mapping} onChange={setMapping} problem={problems.mapping}
            placeholder={kind === "webhook" ? '{"topic": "/pull_request/title"}' : '{"topic": "/data/summary"}'} />
          <TargetEditor value={target} onChange={setTarget} problem={problems[TARGET_JSON]} />
          <div><button type="submit" disabled={busy}>Create trigger</button></div>
          <ErrorNote error={error} />
        </form>
      )}
      <ErrorNote error={rowError} />
      <Loaded q={list} empty="No triggers yet.">
        {(rows) => (
          <table aria-label="Triggers">
            <thead><tr><th>Name</th><th>Fires on</th><th>Starts</th><th>Owner</th><th>State</th><th /></tr></thead>
            <tbody>
              {rows.map((t) => (
                <TriggerRow key={t.id} t={t} open={open === t.id} mayChange={mayChangeOwned(me, t.owner_id)}
                  onOpen={() => setOpen(open === t.id ? null : t.id)}
                  onToggle={() => toggleEnabled(t)} onDelete={() => remove(t)} />
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function TriggerRow({ t, open, mayChange, onOpen, onToggle, onDelete }: {
  t: TriggerView; open: boolean; mayChange: boolean;
  onOpen: () => void; onToggle: () => void; onDelete: () => void;
}) {
  const runs = useQuery({
    queryKey: ["trigger-runs", t.id],
    queryFn: async () => unwrap(await api.GET("/triggers/{id}/runs", { params: { path: { id: t.id } } })),
    enabled: open,
    refetchInterval: open ? 5000 : false,
  });
  const mapping = Object.keys(t.mapping ?? {}).length > 0 ? JSON.stringify(t.mapping) : "";
  const filter = Object.keys(t.filter ?? {}).length > 0 ? JSON.stringify(t.filter) : "";
  const args = argsOf(t.target);
  return (
    <>
      <tr>
        <td>{t.name}</td>
        <td>
          {t.kind === "event"
            ? <>events {t.events.join(", ")}{filter && <> where <code>{filter}</code></>} (depth {t.max_depth})</>
            : <>{t.auth} delivery to <code>{t.hook_url}</code></>}
        </td>
        <td>
          {describe(t.target)}
          {args && <> with <code>{args}</code></>}
          {mapping && <> mapped <code>{mapping}</code></>}
        </td>
        <td>{t.owner ?? "–"}</td>
        <td>{t.enabled ? "active" : "paused"}</td>
        <td>
          <button type="button" aria-expanded={open} aria-label={`Runs of ${t.name}`} onClick={onOpen}>Runs</button>
          {mayChange && (
            <>
              <button type="button" aria-label={`${t.enabled ? "Pause" : "Resume"} ${t.name}`} onClick={onToggle}>
                {t.enabled ? "Pause" : "Resume"}
              </button>
              <button type="button" aria-label={`Delete ${t.name}`} onClick={onDelete}>Delete</button>
            </>
          )}
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={6}>
            <RunsList runs={runs} label={`Runs started by ${t.name}`} />
          </td>
        </tr>
      )}
    </>
  );
}

function Webhooks() {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ["webhooks"], queryFn: async () => unwrap(await api.GET("/webhooks")) });
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [all, setAll] = useState(false);
  const [events, setEvents] = useState<string[]>([]);
  const [format, setFormat] = useState("standard");
  // The new subscription's secret: in this component's state only, never in the query cache.
  const [made, setMade] = useState<{ name: string; secret: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const body: Schemas["WebhookBody"] = { name, url: url.trim(), events: all ? ["*"] : events, format, enabled: true };
      const w = unwrap(await api.POST("/webhooks", { body }));
      setMade({ name: w.name, secret: w.secret });
      setName("");
      setUrl("");
      await qc.invalidateQueries({ queryKey: ["webhooks"] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const toggle = (t: string) => setEvents((ev) => (ev.includes(t) ? ev.filter((x) => x !== t) : [...ev, t]));
  return (
    <section aria-labelledby="webhooks">
      <h2 id="webhooks">Webhooks</h2>
      {made && (
        <SecretOnce label={`Webhook ${made.name} was created. Its signing secret`} secret={made.secret}
          onDismiss={() => setMade(null)} />
      )}
      <form onSubmit={create} className="stack" aria-label="New webhook">
        <label>Webhook name<input required value={name} onChange={(e) => setName(e.target.value)} /></label>
        <label>URL<input required type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.example.com/vorg" /></label>
        <fieldset>
          <legend>Events</legend>
          <label className="inline"><input type="checkbox" checked={all} onChange={() => setAll(!all)} />all events</label>
          {EVENT_TYPES.map((t) => (
            <label key={t} className="inline">
              <input type="checkbox" disabled={all} checked={all || events.includes(t)} onChange={() => toggle(t)} />{t}
            </label>
          ))}
        </fieldset>
        <label>
          Format
          <select value={format} onChange={(e) => setFormat(e.target.value)}>
            <option value="standard">Standard Webhooks (JSON, signed)</option>
            <option value="slack">Slack incoming webhook</option>
          </select>
        </label>
        <div><button type="submit" disabled={busy}>Create webhook</button></div>
        <ErrorNote error={error} />
      </form>
      <Loaded q={list} empty="No webhooks yet.">
        {(rows) => (
          <table aria-label="Webhooks">
            <thead><tr><th>Name</th><th>URL</th><th>Events</th><th>State</th><th>Last success</th><th>Last failure</th><th>Failures in a row</th></tr></thead>
            <tbody>
              {rows.map((w) => (
                <tr key={w.id}>
                  <td><Link to={`/automation/webhooks/${w.id}`}>{w.name}</Link></td>
                  <td><code>{w.url}</code> ({w.format})</td>
                  <td>{w.events.join(", ")}</td>
                  <td>{w.enabled ? "active" : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ""}`}</td>
                  <td>{when(w.last_success_at)}</td>
                  <td>{when(w.last_failure_at)}</td>
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

/** One subscription and its delivery log: attempts, test, redeliver, disable and re-enable. */
export function WebhookDetail({ me }: { me: Me }) {
  const id = Number(useParams().id);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const allowed = can(me, "manage_webhooks");
  const valid = Number.isInteger(id) && id > 0 && allowed;
  const hook = useQuery({
    queryKey: ["webhook", id],
    queryFn: async () => unwrap(await api.GET("/webhooks/{id}", { params: { path: { id } } })),
    enabled: valid,
    refetchInterval: 10_000,
  });
  const deliveries = useInfiniteQuery({
    queryKey: ["deliveries", id],
    queryFn: async ({ pageParam }) =>
      unwrap(await api.GET("/webhooks/{id}/deliveries", {
        params: { path: { id }, query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } },
      })),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor || undefined,
    enabled: valid,
    refetchInterval: 3000,
  });
  const [open, setOpen] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (!allowed) return <p>Only admins manage webhooks.</p>;
  if (!valid) return <p>No such webhook.</p>;
  if (hook.isPending) return <p className="loading">Loading…</p>;
  if (hook.error) return <ErrorNote error={hook.error} />;
  const w = hook.data;
  const act = async (f: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await f();
      await qc.invalidateQueries({ queryKey: ["deliveries", id] });
      await qc.invalidateQueries({ queryKey: ["webhook", id] });
      await qc.invalidateQueries({ queryKey: ["webhooks"] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const test = () => act(async () => {
    unwrap(await api.POST("/webhooks/{id}/test", { params: { path: { id } } }));
  });
  const setEnabled = (enabled: boolean) => act(async () => {
    const body: Schemas["WebhookBody"] = { name: w.name, url: w.url, events: w.events, format: w.format, enabled };
    qc.setQueryData(["webhook", id], unwrap(await api.PUT("/webhooks/{id}", { params: { path: { id } }, body })));
  });
  const remove = async () => {
    setError(null);
    try {
      check(await api.DELETE("/webhooks/{id}", { params: { path: { id } } }));
      await qc.invalidateQueries({ queryKey: ["webhooks"] });
      await navigate("/automation?tab=webhooks");
      qc.removeQueries({ queryKey: ["webhook", id] });
      qc.removeQueries({ queryKey: ["deliveries", id] });
    } catch (err) {
      setError(err);
    }
  };
  const redeliver = (delivery_id: number) => act(async () => {
    unwrap(await api.POST("/webhooks/{id}/deliveries/{delivery_id}/redeliver", { params: { path: { id, delivery_id } } }));
  });
  const rows = deliveries.data?.pages.flatMap((p) => p.items);
  return (
    <div>
      <p><Link to="/automation?tab=webhooks">Automation</Link> / webhook</p>
      <h1>{w.name}</h1>
      <dl className="facts">
        <dt>URL</dt><dd><code>{w.url}</code></dd>
        <dt>Format</dt><dd>{w.format === "slack" ? "Slack incoming webhook" : "Standard Webhooks (JSON, signed)"}</dd>
        <dt>Events</dt><dd>{w.events.map((e) => (e === "*" ? "all events" : e)).join(", ")}</dd>
        <dt>State</dt>
        <dd className={w.enabled ? undefined : "error-text"}>
          {w.enabled ? "active" : `disabled: ${w.disabled_reason ?? "by an admin"}`}
        </dd>
        <dt>Failures in a row</dt><dd>{w.failure_streak}</dd>
        <dt>Last success</dt><dd>{when(w.last_success_at)}</dd>
        <dt>Last failure</dt><dd>{when(w.last_failure_at)}</dd>
        <dt>Created</dt><dd>{when(w.created_at)}</dd>
      </dl>
      <p>
        <button type="button" disabled={busy} onClick={test}>Send test</button>
        {w.enabled
          ? <button type="button" disabled={busy} onClick={() => setEnabled(false)}>Disable</button>
          : <button type="button" disabled={busy} onClick={() => setEnabled(true)}>Enable again</button>}
        <button type="button" disabled={busy} onClick={remove}>Delete</button>
      </p>
      <ErrorNote error={error} />
      <section aria-labelledby="deliveries">
        <h2 id="deliveries">Deliveries</h2>
        <Loaded q={{ isPending: deliveries.isPending, error: deliveries.error, data: rows }} empty="No deliveries yet.">
          {(list) => (
            <>
              <table aria-label="Deliveries">
                <thead><tr><th>Event</th><th>Status</th><th>Attempts</th><th>Last status / error</th><th>Created</th><th /></tr></thead>
                <tbody>
                  {list.map((d) => (
                    <DeliveryRow key={d.id} hook={id} d={d} open={open === d.id} busy={busy}
                      onToggle={() => setOpen(open === d.id ? null : d.id)} onRedeliver={() => redeliver(d.id)} />
                  ))}
                </tbody>
              </table>
              {deliveries.hasNextPage && (
                <div className="pager">
                  <button type="button" disabled={deliveries.isFetchingNextPage} onClick={() => void deliveries.fetchNextPage()}>
                    {deliveries.isFetchingNextPage ? "Loading…" : "Load more"}
                  </button>
                </div>
              )}
            </>
          )}
        </Loaded>
      </section>
    </div>
  );
}

function DeliveryRow({ hook, d, open, busy, onToggle, onRedeliver }: {
  hook: number; d: Schemas["DeliveryView"]; open: boolean; busy: boolean; onToggle: () => void; onRedeliver: () => void;
}) {
  const detail = useQuery({
    queryKey: ["delivery", hook, d.id, d.attempts, d.status],
    queryFn: async () => unwrap(await api.GET("/webhooks/{id}/deliveries/{delivery_id}", { params: { path: { id: hook, delivery_id: d.id } } })),
    enabled: open,
  });
  const last = [d.last_status, d.last_error].filter((x) => x !== null && x !== undefined && x !== "").join(": ");
  return (
    <>
      <tr>
        <td><button type="button" className="link" aria-expanded={open} onClick={onToggle}>{d.event_type}</button></td>
        <td><StatusBadge status={d.status} /></td>
        <td>{d.attempts}</td>
        <td>{last || "–"}</td>
        <td>{when(d.created_at)}</td>
        <td><button type="button" disabled={busy} aria-label={`Redeliver ${d.event_type} ${d.msg_id}`} onClick={onRedeliver}>Redeliver</button></td>
      </tr>
      {open && (
        <tr>
          <td colSpan={6}>
            <p>
              Message id <code>{d.msg_id}</code>
              {d.delivered_at && <> · delivered {when(d.delivered_at)}</>}
              {d.next_attempt_at && <> · next attempt {when(d.next_attempt_at)}</>}
            </p>
            {detail.isPending ? <p className="loading">Loading…</p> : detail.error ? <ErrorNote error={detail.error} /> : (
              detail.data.attempts_log.length === 0 ? <p>No attempts yet.</p> : (
                <table aria-label={`Attempts of ${d.msg_id}`}>
                  <thead><tr><th>#</th><th>Started</th><th>Took</th><th>Status</th><th>Error</th><th>Response</th></tr></thead>
                  <tbody>
                    {detail.data.attempts_log.map((a) => (
                      <tr key={a.attempt}>
                        <td>{a.attempt}</td><td>{when(a.started_at)}</td><td>{a.duration_ms} ms</td>
                        <td>{a.status_code ?? "–"}</td><td className={a.error ? "error-text" : undefined}>{a.error ?? ""}</td>
                        <td>{a.response_excerpt && <code>{a.response_excerpt}</code>}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )
            )}
          </td>
        </tr>
      )}
    </>
  );
}
