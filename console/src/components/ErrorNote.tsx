import { ApiError } from "../api/client";

/** The API's problem next to the action that failed: its detail and every field it names. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const detail = error instanceof Error ? error.message : String(error);
  const fields = error instanceof ApiError ? error.fields : [];
  return (
    <div role="alert" className="error">
      <strong>{detail}</strong>
      {fields.length > 0 && (
        <ul>
          {fields.map((f) => (
            <li key={f.field + f.message}>
              <code>{f.field}</code>: {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
