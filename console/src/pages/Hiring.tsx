import { useState, type FormEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api, money, unwrap, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";

type Plan = Schemas["HiringPlan"];
/** A role or workstream of a plan: an object the organization's hiring-plan schema shapes. */
type Entry = Plan["roles"][number];

const text = (e: Entry, k: string): string => {
  const v = e[k];
  return typeof v === "string" ? v : "";
};
const texts = (e: Entry, k: string): string[] => {
  const v = e[k];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
};
const amount = (e: Entry, k: string): number | undefined => {
  const v = e[k];
  return typeof v === "number" ? v : undefined;
};

/** A hiring plan from an idea, a budget and a deadline; reviewed, then applied (personas
 * created, behind an approval when it costs more than the auto-approve threshold). */
export function Hiring({ me }: { me: Me }) {
  const qc = useQueryClient();
  const [form, setForm] = useState({ idea: "", budget_usd: "2000", deadline_days: "30", goal: "" });
  const [plan, setPlan] = useState<Plan | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [applied, setApplied] = useState<string | null>(null);
  const [approvalId, setApprovalId] = useState("");
  if (!can(me, "start_runs")) return <p>Your roles cannot make hiring plans.</p>;
  const generate = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setPlan(null);
    setApplied(null);
    try {
      const p = unwrap(
        await api.POST("/hiring/plan", {
          body: {
            idea: form.idea,
            goal: form.goal,
            budget_usd: Number(form.budget_usd),
            deadline_days: Number(form.deadline_days),
          },
        }),
      );
      if ("roles" in p) {
        setPlan(p);
      } else {
        setError(new Error(`The plan is still being drafted: follow run ${p.run_id}.`));
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const apply = async () => {
    if (!plan?.plan_id) return;
    setError(null);
    try {
      const res = await api.POST("/hiring/plans/{id}/apply", {
        params: { path: { id: plan.plan_id } },
        body: approvalId ? { approval_id: Number(approvalId) } : {},
      });
      const out = unwrap(res);
      if ("approval_id" in out) {
        setApplied(`This plan needs approval ${out.approval_id}: once it is approved, apply again with it.`);
        setApprovalId(String(out.approval_id));
      } else {
        setApplied(`Created personas: ${out.created.join(", ") || "none"}`);
        await qc.invalidateQueries({ queryKey: ["org-chart"] });
      }
    } catch (err) {
      setError(err);
    }
  };
  const field = (k: keyof typeof form, label: string, numeric = false) => (
    <label>
      {label}
      <input required inputMode={numeric ? "decimal" : undefined} value={form[k]}
        onChange={(e) => setForm({ ...form, [k]: e.target.value })} />
    </label>
  );
  return (
    <div>
      <h1>Hiring plans</h1>
      <form className="card" onSubmit={generate}>
        {field("idea", "Idea")}
        {field("goal", "Goal")}
        {field("budget_usd", "Monthly budget (USD)", true)}
        {field("deadline_days", "Deadline (days)", true)}
        <button type="submit" disabled={busy}>{busy ? "Planning…" : "Make a plan"}</button>
      </form>
      <ErrorNote error={error} />
      {plan && (
        <section aria-labelledby="plan">
          <h2 id="plan">Plan {plan.plan_id} — {money(plan.estimated_monthly_cost_usd)} a month</h2>
          <h3>Roles</h3>
          <table>
            <thead><tr><th>Role</th><th>Mission</th><th>Deliverables</th><th>Monthly cost</th></tr></thead>
            <tbody>
              {plan.roles.map((r, i) => (
                <tr key={i}>
                  <td>{text(r, "role_id")}</td><td>{text(r, "mission")}</td>
                  <td>{texts(r, "deliverables").join(", ")}</td>
                  <td>{money(amount(r, "monthly_cost_usd"))}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Workstreams</h3>
          <ul>
            {plan.workstreams.map((w, i) => (
              <li key={i}>{text(w, "name")} — {text(w, "owner")}: {text(w, "milestone")}</li>
            ))}
          </ul>
          {can(me, "manage_personas") && (
            <div className="decide">
              <label>
                Approval (when one was needed)
                <input value={approvalId} onChange={(e) => setApprovalId(e.target.value)} />
              </label>
              <button type="button" onClick={apply}>Apply: create the personas</button>
            </div>
          )}
          {applied && <p role="status">{applied}</p>}
        </section>
      )}
    </div>
  );
}
