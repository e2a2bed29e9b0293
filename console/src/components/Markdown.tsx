import ReactMarkdown from "react-markdown";

/** Markdown without its YAML front matter (minutes, decisions, the constitution). */
export default function Markdown({ text }: { text: string }) {
  const body = text.startsWith("---\n") ? text.replace(/^---\n[\s\S]*?\n---\n/, "") : text;
  return (
    <div className="markdown">
      <ReactMarkdown>{body}</ReactMarkdown>
    </div>
  );
}
