import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, money, unwrap, when, type Schemas } from "../api/client";
import { can, type Me } from "../api/hooks";
import { ErrorNote } from "../components/ErrorNote";
import { StatusBadge } from "../components/StatusBadge";

type Approval = Schemas["ApprovalView"];

/** The queue (tier, amount, requester, justification), decisions with a comment, the
 * separation of duties visible, and the history. */
export function Approvals({ me }: { me: Me }) {
  const pending = useQuery({
    queryKey: ["approvals", "pending"],
    queryFn: async () =>
      unwrap(await api.GET("/approvals", { params: { query: { status: "pending", limit: 100 } } })),
    refetchInterval: 5000,
  });
  const history = useQuery({
    queryKey: ["approvals", "all"],
    queryFn: async () => unwrap(await api.GET("/approvals", { params: { query: { limit: 50 } } })),
  });
  return (
    <div>
      <h1>Approvals</h1>
      {can(me, "submit_approvals") && <SubmitForm />}
      <section aria-labelledby="queue">
        <h2 id="queue">Waiting for a decision</h2>
        {(pending.data?.items ?? []).length === 0 && <p>The queue is empty.</p>}
        {(pending.data?.items ?? []).map((a) => (
          <Pending key={a.id} a={a} me={me} />
        ))}
      </section>
      <section aria-labelledby="history">
        <h2 id="history">History</h2>
        <table>
          <thead>
            <tr><th>Request</th><th>Amount</th><th>Status</th><th>Requested by</th><th>Decided</th><th>Comment</th></tr>
          </thead>
          <tbody>
            {(history.data?.items ?? [])
              .filter((a) => a.status !== "pending")
              .map((a) => (
                <tr key={a.id}>
                  <td>{a.description}</td>
                  <td>{money(a.amount_usd)}</td>
                  <td><StatusBadge status={a.status} /></td>
                  <td>{a.requested_by_email}</td>
                  <td>{when(a.decided_at)}</td>
                  <td>{a.decision_comment}</td>
                </tr>
              ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

function Pending({ a, me }: { a: Approval; me: Me }) {
  const qc = useQueryClient();
  const [comment, setComment] = useState("");
  const [error, setError] = useState<unknown>(null);
  const own = a.requested_by === me.id;
  const allowed = can(me, "decide_approvals");
  const decide = async (approve: boolean) => {
    setError(null);
    try {
      const params = { params: { path: { id: a.id } }, body: { comment } };
      unwrap(
        approve
          ? await api.POST("/approvals/{id}/approve", params)
          : await api.POST("/approvals/{id}/reject", params),
      );
      await qc.invalidateQueries({ queryKey: ["approvals"] });
    } catch (e) {
      setError(e);
    }
  };
  return (
    <article className="card" aria-label={`Approval ${a.id}: ${a.description}`}>
      <h3>{a.description}</h3>
      <p>
        {money(a.amount_usd)} · tier <strong>{a.tier}</strong> · {a.rule} · requested by{" "}
        {a.requested_by_email} {when(a.created_at)}
      </p>
      {a.justification && <p className="justification">{a.justification}</p>}
      {own ? (
        <p className="note">You requested this: someone else must decide it.</p>
      ) : !allowed ? (
        <p className="note">Your roles cannot decide approvals.</p>
      ) : (
        <div className="decide">
          <label>
            Comment
            <input value={comment} onChange={(e) => setComment(e.target.value)} />
          </label>
          <button type="button" onClick={() => decide(true)}>Approve</button>
          <button type="button" onClick={() => decide(false)}>Reject</button>
        </div>
      )}
      <ErrorNote error={error} />
    </article>
  );
}

function SubmitForm() {
  const qc = useQueryClient();
  const [description, setDescription] = useState("");
  const [amount, setAmount] = useState("");
  const [justification, setJustification] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    try {
      const r = unwrap(
        await api.POST("/approvals/submit", {
          body: { description, amount_usd: Number(amount), justification },
        }),
      );
      setResult(`Request ${r.id}: ${r.status}${r.tier ? ` (tier ${r.tier})` : ""}`);
      setDescription("");
      setAmount("");
      setJustification("");
      await qc.invalidateQueries({ queryKey: ["approvals"] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="submit-title">
      <h2 id="submit-title">Request a spend</h2>
      <label>
        What for
        <input required value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <label>
        Amount (USD)
        <input required inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} />
      </label>
      <label>
        Justification
        <input value={justification} onChange={(e) => setJustification(e.target.value)} />
      </label>
      <button type="submit">Submit</button>
      {result && <p role="status">{result}</p>}
      <ErrorNote error={error} />
    </form>
  );
}
