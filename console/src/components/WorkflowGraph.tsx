// A workflow drawn as a layered graph (SVG): steps or nodes left to right by depth, edges
// from dependencies (dag) or from next / branches / routes / rejections (graph); each node
// colored by its state in a run. Small on purpose: workflows have tens of steps, not
// thousands, so a longest-path layering is enough and needs no layout library.

export type StepState = "pending" | "running" | "succeeded" | "failed";

type Def = Record<string, unknown>;
type Edge = { from: string; to: string; label?: string };

/** Nodes and edges of a workflow document (`dag` or `graph`); `null` for other engines. */
export function shape(def: unknown): { nodes: string[]; edges: Edge[] } | null {
  if (!def || typeof def !== "object") return null;
  const d = def as Def;
  const list = (v: unknown) => (Array.isArray(v) ? (v as Def[]) : []);
  if (d.engine === "dag") {
    const steps = list(d.steps);
    const nodes = steps.map((s) => String(s.id ?? ""));
    const edges = steps.flatMap((s) =>
      (Array.isArray(s.depends_on) ? s.depends_on : []).map((dep) => ({ from: String(dep), to: String(s.id) })),
    );
    return { nodes, edges };
  }
  if (d.engine === "graph") {
    const ns = list(d.nodes);
    const nodes = [...ns.map((n) => String(n.id ?? "")), "END"];
    const edges: Edge[] = [];
    for (const n of ns) {
      const from = String(n.id);
      if (typeof n.next === "string") edges.push({ from, to: n.next });
      for (const b of list(n.branches)) edges.push({ from, to: String(b.to), label: b.when ? String(b.when) : "else" });
      const route = n.route as Def | undefined;
      for (const t of Array.isArray(route?.targets) ? (route.targets as string[]) : []) edges.push({ from, to: t, label: "routed" });
      if (typeof n.on_reject === "string") edges.push({ from, to: n.on_reject, label: "rejected" });
    }
    return { nodes, edges: edges.filter((e) => nodes.includes(e.to)) };
  }
  return null;
}

/** Depth of each node: the longest path from a root, ignoring edges that close cycles. */
function layers(nodes: string[], edges: Edge[]): Map<string, number> {
  const depth = new Map(nodes.map((n) => [n, 0]));
  for (let round = 0; round < nodes.length; round++) {
    let changed = false;
    for (const e of edges) {
      const next = (depth.get(e.from) ?? 0) + 1;
      if (next > (depth.get(e.to) ?? 0) && next < nodes.length) {
        depth.set(e.to, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return depth;
}

export function WorkflowGraph({ def, states }: { def: unknown; states?: Map<string, StepState> }) {
  const s = shape(def);
  if (!s || s.nodes.length === 0) return null;
  const depth = layers(s.nodes, s.edges);
  const columns = new Map<number, string[]>();
  for (const n of s.nodes) columns.set(depth.get(n) ?? 0, [...(columns.get(depth.get(n) ?? 0) ?? []), n]);
  const W = 150;
  const H = 44;
  const pos = new Map<string, { x: number; y: number }>();
  for (const [col, ns] of columns) ns.forEach((n, row) => pos.set(n, { x: col * (W + 50) + 10, y: row * (H + 24) + 10 }));
  const width = Math.max(...[...pos.values()].map((p) => p.x)) + W + 20;
  const height = Math.max(...[...pos.values()].map((p) => p.y)) + H + 20;
  return (
    <svg role="img" aria-label="Workflow graph" viewBox={`0 0 ${width} ${height}`} width={Math.min(width, 1100)}
      className="wf-graph">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" className="wf-arrow" />
        </marker>
      </defs>
      {s.edges.map((e, i) => {
        const a = pos.get(e.from);
        const b = pos.get(e.to);
        if (!a || !b) return null;
        const back = b.x <= a.x;
        const x1 = a.x + W;
        const y1 = a.y + H / 2;
        const x2 = back ? b.x + W / 2 : b.x;
        const y2 = back ? b.y + H : b.y + H / 2;
        const mid = back ? `C ${x1 + 40} ${y1 + 60}, ${x2} ${y2 + 60}, ${x2} ${y2}` : `C ${x1 + 25} ${y1}, ${x2 - 25} ${y2}, ${x2} ${y2}`;
        return (
          <g key={i}>
            <path d={`M ${x1} ${y1} ${mid}`} className="wf-edge" markerEnd="url(#arrow)" />
            {e.label && (
              <text x={(x1 + x2) / 2} y={(y1 + y2) / 2 - 4} className="wf-edge-label">{e.label.slice(0, 28)}</text>
            )}
          </g>
        );
      })}
      {s.nodes.map((n) => {
        const p = pos.get(n);
        if (!p) return null;
        const state = states?.get(n) ?? "pending";
        return (
          <g key={n} transform={`translate(${p.x} ${p.y})`} data-state={state} aria-label={`${n}: ${state}`}>
            <rect width={W} height={H} rx={8} className={`wf-node wf-${state}`} />
            <text x={W / 2} y={H / 2 + 5} textAnchor="middle" className="wf-label">{n.slice(0, 20)}</text>
          </g>
        );
      })}
    </svg>
  );
}
