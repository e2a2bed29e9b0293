import { useEffect, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";

/** A JSON object (the SSE rows' `data:` are objects; anything else is shown as sent). */
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export type Line = { id: string; kind: string; text: string; fields?: Record<string, unknown> };

/** The run's log, history then live, over SSE (the browser resumes with Last-Event-ID after
 * a drop); virtualized so tens of thousands of lines stay smooth. Calls `onDone` once the
 * run ended. */
export function LiveLog({
  runId,
  onDone,
  onLines,
}: {
  runId: number;
  onDone?: () => void;
  /** Every line so far, after each batch arrives (for views derived from the log). */
  onLines?: (lines: Line[]) => void;
}) {
  const [lines, setLines] = useState<Line[]>([]);
  const [state, setState] = useState<"connecting" | "live" | "done" | "reconnecting">("connecting");
  const done = useRef(onDone);
  done.current = onDone;
  const listen = useRef(onLines);
  listen.current = onLines;
  useEffect(() => {
    listen.current?.(lines);
  }, [lines]);

  useEffect(() => {
    setLines([]);
    const source = new EventSource(`/streams/runs/${runId}?format=json`);
    let pending: Line[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = [];
      setLines((prev) => prev.concat(batch));
    };
    const push = (l: Line) => {
      pending.push(l);
      if (!frame) frame = requestAnimationFrame(flush);
    };
    source.onopen = () => setState("live");
    source.onerror = () => setState((s) => (s === "done" ? s : "reconnecting"));
    source.addEventListener("log", (e) => {
      try {
        const l: unknown = JSON.parse(e.data);
        if (!isObject(l) || typeof l.message !== "string") throw new Error("not a log row");
        push({ id: e.lastEventId, kind: "log", text: l.message, fields: isObject(l.fields) ? l.fields : undefined });
      } catch {
        push({ id: e.lastEventId, kind: "log", text: e.data });
      }
    });
    source.addEventListener("status", (e) => {
      let text = e.data;
      try {
        const s: unknown = JSON.parse(e.data);
        if (isObject(s) && typeof s.status === "string") {
          text = `status: ${s.status}${typeof s.error === "string" && s.error ? ` (${s.error})` : ""}`;
        }
      } catch {
        /* shown as sent */
      }
      push({ id: e.lastEventId, kind: "status", text });
    });
    source.addEventListener("done", () => {
      source.close();
      setState("done");
      if (frame) cancelAnimationFrame(frame);
      flush();
      done.current?.();
    });
    return () => {
      source.close();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [runId]);

  const parent = useRef<HTMLDivElement>(null);
  const rows = useVirtualizer({
    count: lines.length,
    getScrollElement: () => parent.current,
    estimateSize: () => 22,
    overscan: 20,
  });
  const follow = useRef(true);
  useEffect(() => {
    if (follow.current && lines.length > 0) rows.scrollToIndex(lines.length - 1, { align: "end" });
  }, [lines.length, rows]);

  return (
    <div>
      <p className="log-state" aria-live="polite">
        Log: {state} — {lines.length} lines
      </p>
      <div
        ref={parent}
        className="log"
        role="log"
        aria-label="Run log"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        <div style={{ height: rows.getTotalSize(), position: "relative" }}>
          {rows.getVirtualItems().map((v) => {
            const l = lines[v.index];
            if (!l) return null;
            return (
              <div
                key={v.key}
                className={`line line-${l.kind}`}
                data-index={v.index}
                style={{ position: "absolute", top: 0, left: 0, width: "100%", transform: `translateY(${v.start}px)` }}
              >
                {l.text}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
