import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter } from "react-router";
import type { Me } from "../api/hooks";
import { Automation } from "./Automation";

const me = {
  id: 1, email: "admin@example.com", roles: ["admin"],
  permissions: ["view_runs", "manage_automations", "manage_webhooks", "hold_meetings", "start_runs"],
} as unknown as Me;

type Handler = (req: Request) => Response | undefined;

// The API client keeps the fetch it was made with: replace it before any module loads.
const net = vi.hoisted(() => {
  const state = { handler: (() => undefined) as (req: Request) => Response | undefined, seen: [] as Request[] };
  globalThis.fetch = (async (input: Request) => {
    state.seen.push(input.clone());
    const answer = state.handler(input);
    if (answer) return answer;
    return new Response("[]", { status: 200, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
  return state;
});

/** Answers the API's requests with `handler`; the requests seen so far. */
function serve(handler: Handler) {
  net.handler = handler;
  net.seen = [];
  return net.seen;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json" },
  });

function show() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={qc}>
      <MemoryRouter>
        <Automation me={me} />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
});

describe("Automation", () => {
  it("shows a new webhook's secret once, until dismissed", async () => {
    serve((req) => {
      if (req.method === "POST" && new URL(req.url).pathname === "/webhooks") {
        return json(201, { id: 1, name: "ops", url: "https://example.com/h", events: ["run.failed"], format: "standard",
          enabled: true, failure_streak: 0, created_at: "2026-12-05T00:00:00Z", updated_at: "2026-12-05T00:00:00Z",
          secret: "whsec_c2VjcmV0" });
      }
      return undefined;
    });
    show();
    fireEvent.click(screen.getByRole("tab", { name: "Webhooks" }));
    fireEvent.change(await screen.findByLabelText("Webhook name"), { target: { value: "ops" } });
    fireEvent.change(screen.getByLabelText("URL"), { target: { value: "https://example.com/h" } });
    fireEvent.click(screen.getByLabelText("run.failed"));
    fireEvent.click(screen.getByRole("button", { name: "Create webhook" }));
    expect((await screen.findByRole("status")).textContent).toContain("whsec_c2VjcmV0");
    fireEvent.click(screen.getByRole("button", { name: "I have copied it" }));
    expect(screen.queryByText("whsec_c2VjcmV0")).toBeNull();
  });

  it("shows the field a refused schedule names", async () => {
    serve((req) => {
      if (req.method === "POST") {
        return json(422, { title: "invalid input", detail: "invalid input", code: "invalid",
          errors: [{ field: "cron", message: "\"61 * * * *\" is not a cron expression" }] });
      }
      return undefined;
    });
    show();
    fireEvent.change(await screen.findByLabelText("Schedule name"), { target: { value: "x" } });
    fireEvent.change(screen.getByLabelText(/^Cron/), { target: { value: "61 * * * *" } });
    fireEvent.click(screen.getByRole("button", { name: "Create schedule" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("cron");
    expect(alert.textContent).toContain("is not a cron expression");
  });

  it("reports JSON that does not parse at its field, without asking the server", async () => {
    const seen = serve(() => undefined);
    show();
    fireEvent.change(await screen.findByLabelText("Schedule name"), { target: { value: "x" } });
    fireEvent.change(screen.getByLabelText("Meeting body (JSON)"), { target: { value: "{today:" } });
    fireEvent.click(screen.getByRole("button", { name: "Create schedule" }));
    expect((await screen.findByRole("alert")).textContent).toContain("target.body is not valid JSON");
    await waitFor(() => expect(seen.filter((r) => r.method === "POST")).toHaveLength(0));
  });
});
