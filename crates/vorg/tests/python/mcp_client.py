"""Drives vorg's MCP server with the official MCP Python SDK (`mcp`), unchanged.

Proves: the token decides the tool list (a narrow key sees fewer tools and is refused a tool it
lacks, naming the permission); a stand-up is held and its minutes read as a resource; a run is
read; a run resource is subscribed to and its updates arrive; prompts are served.

Usage:
  mcp_client.py http  MCP_URL            FULL_TOKEN NARROW_TOKEN [auto|legacy]
  mcp_client.py stdio VORG_BIN SERVER_URL FULL_TOKEN NARROW_TOKEN [auto|legacy]
`auto` lets the SDK negotiate (the 2026-07-28 protocol with `subscriptions/listen`); `legacy`
forces the initialize handshake (`resources/subscribe` and `notifications/resources/updated`).
"""
import asyncio
import json
import os
import sys
import warnings

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

warnings.simplefilter("ignore")  # the SDK marks resources/subscribe deprecated; legacy mode uses it


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(cond, message):
    if not cond:
        fail(message)


args = sys.argv[1:]
kind = args[0]
if kind == "http":
    url, full, narrow = args[1:4]
    mode = args[4] if len(args) > 4 else "auto"
else:
    vorg_bin, server_url, full, narrow = args[1:5]
    mode = args[5] if len(args) > 5 else "auto"


def connect(token, message_handler=None):
    if kind == "http":
        transport = streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}))
    else:
        env = dict(os.environ, VORG_TOKEN=token)
        transport = StdioServerParameters(command=vorg_bin, args=["mcp", "--url", server_url], env=env)
    return Client(transport, mode=mode, message_handler=message_handler)


async def narrow_key():
    async with connect(narrow) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        check("get_run" in names, f"the narrow key cannot see get_run: {names}")
        check("hold_standup" not in names, f"the narrow key sees hold_standup: {names}")
        try:
            result = await client.call_tool("hold_standup", {})
            text = " ".join(getattr(c, "text", "") for c in result.content)
            check(result.is_error, f"hold_standup was not refused: {text}")
        except Exception as e:  # a protocol error is acceptable if it names the permission
            text = str(e)
        check("hold_meetings" in text, f"the refusal does not name the permission: {text}")
        return names


async def full_key(narrow_names):
    updates = []

    async def on_message(message):
        if "resources/updated" in repr(message) or "ResourceUpdated" in repr(message):
            updates.append(repr(message))

    async with connect(full, on_message) as client:
        tools = (await client.list_tools()).tools
        names = {t.name for t in tools}
        for want in ("hold_standup", "get_run", "list_personas", "search_artifacts"):
            check(want in names, f"the full key cannot see {want}")
        check(len(names) > len(narrow_names), "the two keys see the same tools")
        for t in tools:
            check(t.input_schema.get("type") == "object" and t.description, f"tool {t.name} is underdescribed")

        progress = []

        async def on_progress(done, total, message):
            progress.append((done, message))

        held = await client.call_tool("hold_standup", {"wait": True}, progress_callback=on_progress)
        check(not held.is_error, f"the stand-up failed: {held.content}")
        check(progress, "no progress notification arrived while the stand-up was held")
        out = held.structured_content
        check(isinstance(out, dict) and isinstance(out.get("run_id"), int), f"no run id: {out}")
        check(out["status"] == "succeeded", f"the stand-up did not succeed: {out}")
        minutes_uri = out.get("minutes_resource", "")
        check(minutes_uri.startswith("vorg://artifacts/"), f"no minutes resource: {out}")
        minutes = (await client.read_resource(minutes_uri)).contents[0].text
        check(minutes.startswith("---"), f"the minutes have no front matter: {minutes[:80]}")

        run = await client.call_tool("get_run", {"run_id": out["run_id"]})
        check(run.structured_content["status"] == "succeeded", f"get_run: {run.structured_content}")

        started = (await client.call_tool("hold_standup", {"wait": False})).structured_content
        uri = started["resource"]
        check(uri == f"vorg://runs/{started['run_id']}", f"the run resource is {uri}")
        if client.protocol_version >= "2026-07-28":
            async with client.listen(resource_subscriptions=[uri]) as sub:
                check(uri in (sub.honored.resource_subscriptions or []), f"not honored: {sub.honored}")
                async with asyncio.timeout(30):
                    async for event in sub:
                        if getattr(event, "uri", None) == uri:
                            updates.append(repr(event))
                            break
        else:
            await client.subscribe_resource(uri)
            for _ in range(300):
                if any(uri in u for u in updates):
                    break
                await asyncio.sleep(0.1)
        check(any(uri in u for u in updates), f"no update arrived for {uri}")
        state = json.loads((await client.read_resource(uri)).contents[0].text)
        check("status" in state and isinstance(state.get("log"), list), f"the run resource: {state}")

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        check("hold_standup" in prompts, f"prompts: {prompts}")
        check((await client.get_prompt("hold_standup")).messages, "the prompt is empty")
        return client.protocol_version


async def main():
    narrow_names = await narrow_key()
    version = await full_key(narrow_names)
    print(f"protocol {version}")
    print(f"mcp client ok ({kind})")


asyncio.run(main())
