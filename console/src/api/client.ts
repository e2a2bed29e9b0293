// The one API client: types generated from vorg's OpenAPI document (schema.d.ts), the
// session cookie sent by the browser, and the CSRF header vorg requires of cookie requests
// that change state.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

export const api = createClient<paths>({
  baseUrl: "",
  credentials: "same-origin",
  headers: { "x-vorg-csrf": "1" },
});

/** An RFC 9457 problem from the API, with the fields it names. */
export class ApiError extends Error {
  readonly status: number;
  readonly fields: { field: string; message: string }[];
  constructor(status: number, detail: string, fields: { field: string; message: string }[]) {
    super(detail);
    this.status = status;
    this.fields = fields;
  }
}

type Problem = { detail?: string; title?: string; errors?: { field: string; message: string }[] };

function isProblem(v: unknown): v is Problem {
  return typeof v === "object" && v !== null;
}

function fieldErrors(v: unknown): { field: string; message: string }[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((e: unknown) =>
    typeof e === "object" && e !== null && "field" in e && "message" in e
      && typeof e.field === "string" && typeof e.message === "string"
      ? [{ field: e.field, message: e.message }]
      : [],
  );
}

/** Throws the problem of a failed openapi-fetch result (for answers without a body). */
export function check(result: { error?: unknown; response: Response }): void {
  if (result.error !== undefined || !result.response.ok) {
    unwrap({ ...result, data: undefined });
  }
}

/** The data of an openapi-fetch result, or an ApiError carrying the problem's detail. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  const { data, error, response } = result;
  if (error !== undefined || !response.ok || data === undefined) {
    const p: Problem = isProblem(error) ? error : {};
    const detail = typeof p.detail === "string" ? p.detail : typeof p.title === "string" ? p.title : undefined;
    throw new ApiError(
      response.status,
      detail ?? `${response.status} ${response.statusText}`,
      fieldErrors(p.errors),
    );
  }
  return data;
}

export function money(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return "–";
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

export function when(ts: string | null | undefined): string {
  if (!ts) return "–";
  return new Date(ts).toLocaleString();
}
