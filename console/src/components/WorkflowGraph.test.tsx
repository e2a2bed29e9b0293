import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { parse } from "yaml";
import { WorkflowGraph, shape } from "./WorkflowGraph";
import { lineOf } from "../pages/Workflows";
import { BurnRate } from "../pages/Dashboard";

const DAG = `engine: dag
name: t
steps:
  - { id: a, agent: x, prompt: p }
  - { id: b, agent: x, prompt: p, depends_on: [a] }
  - { id: c, agent: x, prompt: p, depends_on: [a, b] }
`;

describe("shape", () => {
  it("takes a dag's dependencies as edges", () => {
    const s = shape(parse(DAG));
    expect(s?.nodes).toEqual(["a", "b", "c"]);
    expect(s?.edges).toEqual([
      { from: "a", to: "b" },
      { from: "a", to: "c" },
      { from: "b", to: "c" },
    ]);
  });

  it("takes a graph's next, branches and rejections, and ends in END", () => {
    const s = shape({
      engine: "graph",
      nodes: [
        { id: "p", next: "r" },
        { id: "r", branches: [{ when: "state.ok", to: "END" }, { to: "p" }] },
        { id: "g", kind: "interrupt", next: "END", on_reject: "p" },
      ],
    });
    expect(s?.nodes).toEqual(["p", "r", "g", "END"]);
    expect(s?.edges.map((e) => `${e.from}>${e.to}:${e.label ?? ""}`)).toEqual([
      "p>r:",
      "r>END:state.ok",
      "r>p:else",
      "g>END:",
      "g>p:rejected",
    ]);
  });

  it("draws nothing for crews and chats", () => {
    expect(shape({ engine: "crew" })).toBeNull();
  });
});

describe("WorkflowGraph", () => {
  it("labels each node with its state", () => {
    render(<WorkflowGraph def={parse(DAG)} states={new Map([["a", "succeeded"], ["b", "running"]])} />);
    const graph = screen.getByRole("img", { name: "Workflow graph" });
    expect(graph.querySelector('[aria-label="a: succeeded"]')).not.toBeNull();
    expect(graph.querySelector('[aria-label="b: running"]')).not.toBeNull();
    expect(graph.querySelector('[aria-label="c: pending"]')).not.toBeNull();
  });
});

describe("lineOf", () => {
  it("finds the line a problem's path points at", () => {
    expect(lineOf(DAG, "steps[2].depends_on")).toBe(6);
    expect(lineOf(DAG, "workflow.steps[1]")).toBe(5);
    expect(lineOf(DAG, "name")).toBe(2);
  });

  it("falls back to the nearest existing parent, or nothing", () => {
    expect(lineOf(DAG, "steps[0].tools[3]")).toBe(4);
    expect(lineOf(DAG, "nonsense")).toBeNull();
  });
});

describe("BurnRate", () => {
  it("projects the month end from the spend so far", () => {
    const now = new Date();
    const day = now.toISOString().slice(0, 10);
    const days = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
    render(<BurnRate rows={[{ key: day, cost_usd: 2 }]} limit={100} />);
    const expected = ((2 / now.getUTCDate()) * days).toFixed(2);
    expect(screen.getByText(/so far/).textContent).toContain(`$2.00 so far; at this rate $${expected}`);
  });
});
