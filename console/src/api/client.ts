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

/** The data of an openapi-fetch result, or an ApiError carrying the problem's detail. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    const p = (result.error ?? {}) as Problem;
    throw new ApiError(
      result.response.status,
      p.detail ?? p.title ?? `${result.response.status} ${result.response.statusText}`,
      p.errors ?? [],
    );
  }
  return result.data as T;
}

export function money(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return "–";
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

export function when(ts: string | null | undefined): string {
  if (!ts) return "–";
  return new Date(ts).toLocaleString();
}
