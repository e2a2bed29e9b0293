import { describe, expect, it } from "vitest";
import { ApiError, check, unwrap } from "./client";

const response = (status: number) => new Response(null, { status });

describe("unwrap", () => {
  it("answers the data of a success", () => {
    expect(unwrap({ data: { id: 3 }, response: response(200) })).toEqual({ id: 3 });
  });

  it("throws the problem with the fields it names, ignoring malformed ones", () => {
    const problem = {
      detail: "2 fields are invalid",
      errors: [{ field: "title", message: "must not be empty" }, { field: 7 }, "x"],
    };
    try {
      unwrap({ error: problem, response: response(422) });
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      const err = e as ApiError;
      expect(err.status).toBe(422);
      expect(err.message).toBe("2 fields are invalid");
      expect(err.fields).toEqual([{ field: "title", message: "must not be empty" }]);
    }
  });

  it("throws when a success has no body to answer", () => {
    expect(() => unwrap({ data: undefined, response: response(204) })).toThrow(ApiError);
  });
});

describe("check", () => {
  it("accepts an answer without a body and throws a failure", () => {
    expect(() => check({ response: response(204) })).not.toThrow();
    expect(() => check({ error: { title: "Not Found" }, response: response(404) })).toThrow("Not Found");
  });
});
