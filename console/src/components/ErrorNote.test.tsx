import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { ApiError, unwrap } from "../api/client";
import { ErrorNote } from "./ErrorNote";

describe("ErrorNote", () => {
  it("shows the problem's detail and every field it names", () => {
    const error = new ApiError(422, "invalid input", [
      { field: "amount_usd", message: "must be a non-negative amount" },
      { field: "description", message: "must not be empty" },
    ]);
    render(<ErrorNote error={error} />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("invalid input");
    expect(screen.getByText("amount_usd").tagName).toBe("CODE");
    expect(alert.textContent).toContain("must not be empty");
  });

  it("renders nothing without an error", () => {
    const { container } = render(<ErrorNote error={null} />);
    expect(container.innerHTML).toBe("");
  });
});

describe("unwrap", () => {
  it("turns a problem document into an ApiError", () => {
    const response = new Response(null, { status: 409, statusText: "Conflict" });
    expect(() =>
      unwrap({ error: { detail: "already decided", errors: [] }, response }),
    ).toThrowError("already decided");
  });

  it("returns the data of a success", () => {
    const response = new Response(null, { status: 200 });
    expect(unwrap({ data: { id: 3 }, response })).toEqual({ id: 3 });
  });
});
