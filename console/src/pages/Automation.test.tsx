import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter, Route, Routes } from "react-router";
import type { Me } from "../api/hooks";
import { Automation, ScheduleDetail, WebhookDetail } from "./Automation";

const admin = {
  id: 1, email: "admin@example.com", roles: ["admin"],
  permissions: ["view_runs", "manage_automations", "manage_webhooks", "hold_meetings", "start_runs"],
} as unknown as Me;

const viewer = {
  id: 2, email: "viewer@example.com", roles: ["viewer"], permissions: ["view_runs"],
} as unknown as Me;

type Answer = Response | Promise<Response> | undefined;
type Handler = (req: Request) => Answer;

// The API client keeps the fetch it was made with: replace it before any module loads.
const net = vi.hoisted(() => {
  const state = { handler: (() => undefined) as (req: Request) => Response | Promise<Response> | undefined, seen: [] as Request[] };
  globalThis.fetch = (async (input: Request) => {
    state.seen.push(input.clone());
    const answer = await state.handler(input);
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

const route = (req: Request) => `${req.method} ${new URL(req.url).pathname}`;

/** Renders `path` with the automation routes; the query client, to look into its cache. */
function show(me: Me = admin, path = "/automation") {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/automation" element={<Automation me={me} />} />
          <Route path="/automation/schedules/:id" element={<ScheduleDetail me={me} />} />
          <Route path="/automation/webhooks/:id" element={<WebhookDetail me={me} />} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return qc;
}

/** Everything the query cache holds, as text. */
const cached = (qc: QueryClient) => JSON.stringify(qc.getQueryCache().getAll().map((q) => q.state.data));

const WEBHOOK = {
  id: 1, name: "ops", url: "https://example.com/h", events: ["run.failed"], format: "standard",
  enabled: true, failure_streak: 0, created_at: "2026-12-05T00:00:00Z", updated_at: "2026-12-05T00:00:00Z",
};

const SCHEDULE = {
  id: 7, name: "daily", description: "", target: { kind: "meeting", type: "standup", body: { today: ["x"] } },
  cron: "0 9 * * *", timezone: "Asia/Tokyo", catch_up: "skip", on_dst_gap: "run", enabled: true,
  owner_id: 3, owner: "eng@example.com", source: "api", version: 2, last_run_id: null, last_slot_at: null,
  next_fire_times: ["2026-12-06T00:00:00Z", "2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z",
    "2026-12-09T00:00:00Z", "2026-12-10T00:00:00Z"],
  created_at: "2026-12-05T00:00:00Z", updated_at: "2026-12-05T00:00:00Z",
};

const delivery = (id: number, event_type = "run.failed") => ({
  id, webhook_id: 1, event_type, msg_id: `msg_${id}`, status: "failed", attempts: 1, last_status: 500,
  last_error: null, payload: {}, created_at: "2026-12-05T00:00:00Z",
});

afterEach(() => {
  cleanup();
});

describe("Automation", () => {
  it("shows a new webhook's secret once, until dismissed, and never caches it", async () => {
    serve((req) => {
      if (route(req) === "POST /webhooks") return json(201, { ...WEBHOOK, secret: "whsec_c2VjcmV0" });
      return undefined;
    });
    const qc = show();
    fireEvent.click(screen.getByRole("tab", { name: "Webhooks" }));
    fireEvent.change(await screen.findByLabelText("Webhook name"), { target: { value: "ops" } });
    fireEvent.change(screen.getByLabelText("URL"), { target: { value: "https://example.com/h" } });
    fireEvent.click(screen.getByLabelText("run.failed"));
    fireEvent.click(screen.getByRole("button", { name: "Create webhook" }));
    const notice = await screen.findByRole("status");
    expect(notice.textContent).toContain("whsec_c2VjcmV0");
    expect(notice.textContent).toContain("it will not be shown again");
    expect(cached(qc)).not.toContain("whsec_c2VjcmV0");
    fireEvent.click(screen.getByRole("button", { name: "I have copied it" }));
    expect(screen.queryByText("whsec_c2VjcmV0")).toBeNull();
    expect(document.body.textContent).not.toContain("whsec_c2VjcmV0");
  });

  it("forgets the secret when the user leaves without dismissing it", async () => {
    serve((req) => {
      if (route(req) === "POST /webhooks") return json(201, { ...WEBHOOK, secret: "whsec_bGVhdmU" });
      return undefined;
    });
    show();
    fireEvent.click(screen.getByRole("tab", { name: "Webhooks" }));
    fireEvent.change(await screen.findByLabelText("Webhook name"), { target: { value: "ops" } });
    fireEvent.change(screen.getByLabelText("URL"), { target: { value: "https://example.com/h" } });
    fireEvent.click(screen.getByLabelText("all events"));
    fireEvent.click(screen.getByRole("button", { name: "Create webhook" }));
    await screen.findByText("whsec_bGVhdmU");
    fireEvent.click(screen.getByRole("tab", { name: "Schedules" }));
    fireEvent.click(screen.getByRole("tab", { name: "Webhooks" }));
    await screen.findByLabelText("Webhook name");
    expect(document.body.textContent).not.toContain("whsec_bGVhdmU");
  });

  it("sends all events as \"*\"", async () => {
    const seen = serve((req) => {
      if (route(req) === "POST /webhooks") return json(201, { ...WEBHOOK, events: ["*"], secret: "whsec_x" });
      return undefined;
    });
    show();
    fireEvent.click(screen.getByRole("tab", { name: "Webhooks" }));
    fireEvent.change(await screen.findByLabelText("Webhook name"), { target: { value: "all" } });
    fireEvent.change(screen.getByLabelText("URL"), { target: { value: "https://example.com/h" } });
    fireEvent.click(screen.getByLabelText("run.failed"));
    fireEvent.click(screen.getByLabelText("all events"));
    fireEvent.click(screen.getByRole("button", { name: "Create webhook" }));
    await screen.findByRole("status");
    const post = seen.find((r) => route(r) === "POST /webhooks");
    expect(await post?.json()).toMatchObject({ name: "all", events: ["*"], format: "standard", enabled: true });
  });

  it("shows a new trigger's hook URL and secret once", async () => {
    serve((req) => {
      if (route(req) === "POST /triggers") {
        return json(201, { id: 4, name: "gh", kind: "webhook", auth: "github", events: [], filter: {}, max_depth: 3,
          target: { kind: "meeting", type: "standup" }, mapping: {}, enabled: true,
          hook_url: "https://vorg.example.com/hooks/abc123", secret: "trigger-secret-0123456789",
          created_at: "2026-12-05T00:00:00Z", updated_at: "2026-12-05T00:00:00Z" });
      }
      return undefined;
    });
    show(admin, "/automation?tab=triggers");
    fireEvent.change(await screen.findByLabelText("Trigger name"), { target: { value: "gh" } });
    fireEvent.click(screen.getByRole("button", { name: "Create trigger" }));
    const notice = await screen.findByRole("status");
    expect(notice.textContent).toContain("trigger-secret-0123456789");
    expect(notice.textContent).toContain("https://vorg.example.com/hooks/abc123");
    fireEvent.click(screen.getByRole("button", { name: "I have copied it" }));
    expect(document.body.textContent).not.toContain("trigger-secret-0123456789");
  });

  it("shows the field a refused schedule names", async () => {
    const seen = serve((req) => {
      if (req.method === "POST") {
        return json(422, { title: "invalid input", detail: "invalid input", code: "invalid",
          errors: [{ field: "cron", message: "\"61 * * * *\" is not a cron expression" }] });
      }
      return undefined;
    });
    show();
    fireEvent.change(await screen.findByLabelText("Schedule name"), { target: { value: "x" } });
    fireEvent.change(screen.getByLabelText(/^Cron/), { target: { value: "61 * * * *" } });
    fireEvent.change(screen.getByLabelText("Time zone"), { target: { value: "Europe/Berlin" } });
    fireEvent.change(screen.getByLabelText("Meeting body (JSON)"), { target: { value: '{"today": ["a"]}' } });
    fireEvent.click(screen.getByRole("button", { name: "Create schedule" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("cron");
    expect(alert.textContent).toContain("is not a cron expression");
    const post = seen.find((r) => r.method === "POST");
    expect(await post?.json()).toMatchObject({
      name: "x", cron: "61 * * * *", timezone: "Europe/Berlin", catch_up: "skip",
      target: { kind: "meeting", type: "standup", body: { today: ["a"] } },
    });
  });

  it("reports JSON that does not parse at its field, without asking the server", async () => {
    const seen = serve(() => undefined);
    show();
    const body = await screen.findByLabelText("Meeting body (JSON)");
    fireEvent.change(screen.getByLabelText("Schedule name"), { target: { value: "x" } });
    fireEvent.change(body, { target: { value: "{today:" } });
    fireEvent.click(screen.getByRole("button", { name: "Create schedule" }));
    await waitFor(() => expect(body.getAttribute("aria-invalid")).toBe("true"));
    const note = document.getElementById(body.getAttribute("aria-describedby") ?? "");
    expect(note?.textContent).toContain("Not valid JSON");
    expect(seen.filter((r) => r.method === "POST")).toHaveLength(0);
    // Valid JSON that is not an object is refused too; fixing it clears the mark.
    fireEvent.change(body, { target: { value: "[1]" } });
    fireEvent.click(screen.getByRole("button", { name: "Create schedule" }));
    await waitFor(() => expect(document.getElementById(body.getAttribute("aria-describedby") ?? "")?.textContent)
      .toContain("Must be a JSON object"));
    expect(seen.filter((r) => r.method === "POST")).toHaveLength(0);
  });

  it("reports a trigger's mapping that does not parse at its field", async () => {
    const seen = serve(() => undefined);
    show(admin, "/automation?tab=triggers");
    fireEvent.change(await screen.findByLabelText("Trigger name"), { target: { value: "t" } });
    const mapping = screen.getByLabelText(/^Mapping/);
    fireEvent.change(mapping, { target: { value: '{"topic": /x}' } });
    fireEvent.click(screen.getByRole("button", { name: "Create trigger" }));
    await waitFor(() => expect(mapping.getAttribute("aria-invalid")).toBe("true"));
    expect(document.getElementById(mapping.getAttribute("aria-describedby") ?? "")?.textContent).toContain("Not valid JSON");
    expect(seen.filter((r) => r.method === "POST")).toHaveLength(0);
  });

  it("does not show loading or a failure as an empty list", async () => {
    let release: (r: Response) => void = () => {};
    serve((req) => (route(req) === "GET /schedules" ? new Promise<Response>((r) => { release = r; }) : undefined));
    show();
    expect(await screen.findByText("Loading…")).toBeTruthy();
    expect(screen.queryByText("No schedules yet.")).toBeNull();
    release(json(500, { title: "internal error", detail: "the store is down" }));
    expect((await screen.findByRole("alert")).textContent).toContain("the store is down");
    expect(screen.queryByText("No schedules yet.")).toBeNull();
  });

  it("says so when there is nothing yet", async () => {
    serve(() => undefined);
    show();
    expect(await screen.findByText("No schedules yet.")).toBeTruthy();
  });

  it("hides the forms and the Webhooks tab from those who may not use them", async () => {
    serve(() => undefined);
    show(viewer);
    await screen.findByText("No schedules yet.");
    expect(screen.queryByRole("form", { name: "New schedule" })).toBeNull();
    expect(screen.queryByRole("tab", { name: "Webhooks" })).toBeNull();
    fireEvent.click(screen.getByRole("tab", { name: "Triggers" }));
    await screen.findByText("No triggers yet.");
    expect(screen.queryByRole("form", { name: "New trigger" })).toBeNull();
  });
});

describe("ScheduleDetail", () => {
  it("shows the next five slots in the schedule's zone and here, and pauses keeping the owner", async () => {
    const seen = serve((req) => {
      if (route(req) === "GET /schedules/7") return json(200, SCHEDULE);
      if (route(req) === "PUT /schedules/7") return json(200, { ...SCHEDULE, enabled: false, next_fire_times: [] });
      return undefined;
    });
    show(admin, "/automation/schedules/7");
    const slots = await screen.findByRole("table", { name: "Next slots" });
    expect(slots.querySelectorAll("tbody tr")).toHaveLength(5);
    expect(slots.textContent).toContain("In Asia/Tokyo");
    // 2026-12-06T00:00Z is 9:00 in Tokyo.
    expect(slots.querySelector("tbody td")?.textContent).toMatch(/9:00/);
    fireEvent.click(screen.getByRole("button", { name: "Pause" }));
    await screen.findByText("None while paused.");
    const put = seen.find((r) => route(r) === "PUT /schedules/7");
    expect(await put?.json()).toMatchObject({ enabled: false, owner: "eng@example.com", cron: "0 9 * * *",
      timezone: "Asia/Tokyo", target: SCHEDULE.target });
  });

  it("offers no changes to a schedule declared in schedules.yaml", async () => {
    serve((req) => (route(req) === "GET /schedules/7" ? json(200, { ...SCHEDULE, source: "file" }) : undefined));
    show(admin, "/automation/schedules/7");
    expect(await screen.findByText(/Declared in schedules\.yaml/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Delete" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Pause" })).toBeNull();
  });
});

describe("WebhookDetail", () => {
  it("pages the delivery log and shows a refused redelivery's problem", async () => {
    const seen = serve((req) => {
      const url = new URL(req.url);
      if (route(req) === "GET /webhooks/1") return json(200, { ...WEBHOOK, enabled: false, disabled_reason: "answered 410 Gone" });
      if (route(req) === "GET /webhooks/1/deliveries") {
        return url.searchParams.get("cursor") === "c2"
          ? json(200, { items: [delivery(1, "webhook.test")], next_cursor: null })
          : json(200, { items: [delivery(3), delivery(2)], next_cursor: "c2" });
      }
      if (route(req) === "POST /webhooks/1/deliveries/3/redeliver") {
        return json(409, { title: "conflict", detail: "the subscription is disabled: enable it first" });
      }
      return undefined;
    });
    show(admin, "/automation/webhooks/1");
    expect(await screen.findByText(/answered 410 Gone/)).toBeTruthy();
    await screen.findByRole("table", { name: "Deliveries" });
    expect(screen.queryByText("webhook.test")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await screen.findByText("webhook.test");
    expect(seen.some((r) => new URL(r.url).searchParams.get("cursor") === "c2")).toBe(true);
    await waitFor(() => expect(screen.queryByRole("button", { name: "Load more" })).toBeNull());
    fireEvent.click(screen.getByRole("button", { name: "Redeliver run.failed msg_3" }));
    expect((await screen.findByRole("alert")).textContent).toContain("enable it first");
    expect(screen.getByRole("button", { name: "Enable again" })).toBeTruthy();
  });

  it("expands a delivery into its attempts", async () => {
    serve((req) => {
      if (route(req) === "GET /webhooks/1") return json(200, WEBHOOK);
      if (route(req) === "GET /webhooks/1/deliveries") return json(200, { items: [delivery(3)], next_cursor: null });
      if (route(req) === "GET /webhooks/1/deliveries/3") {
        return json(200, { ...delivery(3), attempts_log: [{ attempt: 1, started_at: "2026-12-05T00:00:01Z",
          duration_ms: 42, status_code: 500, response_excerpt: "upstream broke", error: null }] });
      }
      return undefined;
    });
    show(admin, "/automation/webhooks/1");
    fireEvent.click(await screen.findByRole("button", { name: "run.failed" }));
    const attempts = await screen.findByRole("table", { name: "Attempts of msg_3" });
    expect(attempts.textContent).toContain("42 ms");
    expect(attempts.textContent).toContain("upstream broke");
  });
});
